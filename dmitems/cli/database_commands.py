"""``dmitems init-db``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from dmitems.cli.output import fail, print_json, success
from dmitems.cli.state import with_database

if TYPE_CHECKING:
    from dmitems.db import Database


def init_db(
    ctx: typer.Context,
    drop: Annotated[
        bool, typer.Option("--drop", help="Drop the items table first (deletes every item).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Create the items table if it does not exist (safe to run again).

    Examples: dmitems init-db; dmitems init-db --drop --yes
    """
    if drop and not yes:
        if not sys.stdin.isatty():
            fail("--drop deletes every item; add --yes to confirm in a non-interactive shell", 2)
        typer.confirm("Drop the items table and every item in it?", abort=True)

    async def work(database: Database) -> dict[str, object]:
        from dmitems.db.schema import create_schema

        return await create_schema(database, drop=drop)

    outcome = with_database(ctx, work)
    if as_json:
        print_json(outcome)
    elif outcome["created"]:
        verb = "recreated" if outcome["dropped"] else "created"
        success(f"{verb} table items in {outcome['url']}")
    else:
        success(f"table items already exists in {outcome['url']}; nothing to do")
