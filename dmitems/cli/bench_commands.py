"""PLACEHOLDER (issue 6 replaces this module): ``dmitems bench``."""

from __future__ import annotations

import typer

from dmitems.cli.output import DmitemsGroup

app = typer.Typer(cls=DmitemsGroup, help="Benchmark sync vs async (not built yet).")
