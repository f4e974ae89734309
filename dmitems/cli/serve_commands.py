"""PLACEHOLDER (issue 5 replaces this module): ``dmitems serve``."""

from __future__ import annotations

from dmitems.cli.output import fail


def serve() -> None:
    """Serve the REST API (not built yet)."""
    fail("serve is not built yet", 1)
