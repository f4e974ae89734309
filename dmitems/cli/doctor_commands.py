"""PLACEHOLDER (issue 3 replaces this module): ``dmitems doctor``."""

from __future__ import annotations

from dmitems.cli.output import fail


def doctor() -> None:
    """Check drivers, connectivity and sizing (not built yet)."""
    fail("doctor is not built yet", 1)
