"""The ``dmitems`` command line: thin Typer commands over the core library.

Command modules import heavy libraries (SQLAlchemy, drivers, FastAPI, uvicorn,
aiohttp) inside the command bodies, so ``dmitems --help`` stays fast.
"""

from __future__ import annotations

from dmitems.cli.app import app


def main() -> None:
    app(prog_name="dmitems")


__all__ = ["app", "main"]
