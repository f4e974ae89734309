"""``dmitems item add|get|list|update|delete``: item CRUD from the terminal.

Every command runs the shared repository's operations through the sync executor
(:class:`~dmitems.repository.SyncItems`) on one connection of the sync engine.
A command runs one to three statements and exits, so the async engine would only
add start-up: an event loop, SQLAlchemy's asyncio layer and, on SQLite, aiosqlite's
worker thread (``benchmarks/startup.sh`` measures ``item list``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer

from dmitems.cli.output import DmitemsGroup, console, fail, print_json, success
from dmitems.cli.state import state_of

if TYPE_CHECKING:
    from dmitems.repository import SyncItems
    from dmitems.schemas import ItemPage, ItemRead

T = TypeVar("T")

app = typer.Typer(
    cls=DmitemsGroup,
    help="Create, read, update, delete, import, export and generate items.",
    no_args_is_help=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
# The id column is a 64-bit integer on every backend: a larger id is bad input (exit 2)
# here, as it is a 422 in the API, not a driver overflow.
# Versions and offsets are 32-bit, as in the API.
BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
ItemId = Annotated[int, typer.Argument(metavar="ID", help="Item id.", max=BIGINT_MAX)]


def with_items(ctx: typer.Context, work: Callable[[SyncItems], T], *, write: bool = False) -> T:
    """Run ``work`` on the configured database's items, in one transaction when ``write``."""
    from dmitems.db import Database
    from dmitems.repository import SyncItems

    database = Database(state_of(ctx).settings())
    try:
        connect = database.sync_begin(write=True) if write else database.sync_connect()
        with connect as connection:
            return work(SyncItems(connection, database.backend))
    finally:
        database.sync_dispose()


def _item_json(item: ItemRead) -> dict[str, Any]:
    return item.model_dump(mode="json")


def show_item(item: ItemRead, as_json: bool) -> None:
    if as_json:
        print_json(_item_json(item))
        return
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for key, value in _item_json(item).items():
        table.add_row(key, "" if value is None else str(value))
    console().print(table)


def show_page(page: ItemPage, as_json: bool) -> None:
    if as_json:
        print_json(page.model_dump(mode="json"))
        return
    from rich.table import Table

    shown = len(page.items)
    first = page.skip + 1 if shown else page.skip
    total = "?" if page.total is None else str(page.total)
    table = Table(title=f"items {first}-{page.skip + shown} of {total}", title_justify="left")
    table.add_column("id", justify="right")
    table.add_column("name", overflow="fold")
    table.add_column("description", overflow="fold")
    table.add_column("price", justify="right")
    table.add_column("version", justify="right")
    table.add_column("updated (UTC)")
    for item in page.items:
        table.add_row(
            str(item.id),
            item.name,
            item.description or "",
            str(item.price),
            str(item.version),
            item.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console().print(table)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="Name, 1-255 characters.")],
    price: Annotated[int, typer.Option("--price", "-p", help="Price, an integer >= 0.")],
    description: Annotated[
        Optional[str], typer.Option("--description", "-d", help="Up to 500 characters.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add one item.

    Example: dmitems item add --name 机械键盘 --price 199 --description "87 键"
    """
    from dmitems.schemas import ItemCreate, parse

    data = parse(ItemCreate, {"name": name, "price": price, "description": description})
    item: ItemRead = with_items(ctx, lambda items: items.create(data), write=True)
    if not as_json:
        success(f"added item {item.id}")
    show_item(item, as_json)


@app.command("get")
def get(
    ctx: typer.Context,
    item_id: ItemId,
    as_json: JsonFlag = False,
) -> None:
    """Show one item.

    Example: dmitems item get 1 --json
    """
    show_item(with_items(ctx, lambda items: items.get(item_id)), as_json)


@app.command("list")
def list_(
    ctx: typer.Context,
    skip: Annotated[int, typer.Option("--skip", min=0, max=INT_MAX, help="Items to skip.")] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Items to show.")] = 20,
    name_contains: Annotated[
        Optional[str], typer.Option("--name-contains", help="Only names containing this text.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List items in id order, with the total.

    Examples: dmitems item list; dmitems item list --skip 20 --limit 20 --json
    """
    page = with_items(ctx, lambda items: items.page(skip, limit, name_contains=name_contains))
    show_page(page, as_json)


@app.command("update")
def update(
    ctx: typer.Context,
    item_id: ItemId,
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="New name.")] = None,
    price: Annotated[Optional[int], typer.Option("--price", "-p", help="New price.")] = None,
    description: Annotated[
        Optional[str], typer.Option("--description", "-d", help="New description.")
    ] = None,
    clear_description: Annotated[
        bool, typer.Option("--clear-description", help="Remove the description.")
    ] = False,
    expect_version: Annotated[
        Optional[int],
        typer.Option(
            "--expect-version",
            max=INT_MAX,
            help="Only update if the item is at this version (exit 5 otherwise).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change some fields of an item; its version goes up by one.

    Example: dmitems item update 1 --price 179 --expect-version 1
    """
    from dmitems.schemas import ItemUpdate, parse

    if clear_description and description is not None:
        fail("give --description or --clear-description, not both", 2)
    changes: dict[str, Any] = {
        key: value for key, value in (("name", name), ("price", price)) if value is not None
    }
    if description is not None or clear_description:
        changes["description"] = description
    patch = parse(ItemUpdate, changes, what="update")
    item: ItemRead = with_items(
        ctx, lambda items: items.update(item_id, patch.changes(), expect_version), write=True
    )
    if not as_json:
        success(f"updated item {item.id} (now version {item.version})")
    show_item(item, as_json)


@app.command("delete")
def delete(
    ctx: typer.Context,
    item_id: ItemId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    expect_version: Annotated[
        Optional[int],
        typer.Option(
            "--expect-version", max=INT_MAX, help="Only delete if the item is at this version."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete one item.

    Example: dmitems item delete 1 --yes
    """
    if not yes:
        if not sys.stdin.isatty():
            fail("deleting needs confirmation; add --yes in a non-interactive shell", 2)
        typer.confirm(f"Delete item {item_id}?", abort=True)
    with_items(ctx, lambda items: items.delete(item_id, expect_version), write=True)
    if as_json:
        print_json({"deleted": item_id})
    else:
        success(f"deleted item {item_id}")
