"""PLACEHOLDER (issue 4 replaces this module): ``item import|export|generate``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the bulk commands to the ``item`` group."""
