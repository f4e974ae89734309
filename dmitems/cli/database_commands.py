"""``dmitems init-db`` and ``dmitems db upgrade|current|history``.

Why a ``db`` group rather than ``init-db --upgrade``: changing a table that
holds rows is a different act from creating an empty one, with its own
options (``--dry-run``, ``--fill-price``, the confirmation), and DBAs know the
verbs from Alembic itself (``upgrade``, ``current``, ``history``).  ``init-db``
stays the safe, idempotent first step: it creates the table, stamps one that
already has dmitems' shape, applies revisions to a table dmitems made, and
otherwise stops with exit 3, the differences and the command to run.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from dmitems.cli.output import console, fail, print_json, success
from dmitems.cli.state import with_database
from dmitems.errors import SchemaMismatch

if TYPE_CHECKING:
    from dmitems.db import Database
    from dmitems.migrations import Survey

app = typer.Typer(
    help="Migrations of the items table (Alembic revisions shipped with dmitems).",
    no_args_is_help=True,
)


def _print_differences(lines: list[str]) -> None:
    out = console()
    for line in lines:
        out.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)


def init_db(
    ctx: typer.Context,
    drop: Annotated[
        bool, typer.Option("--drop", help="Drop the items table first (deletes every item).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Create the items table at the latest revision (safe to run again).

    An existing table in dmitems' shape is stamped; one in another shape (e.g. the
    seed service's) is listed and left alone: exit 3, see `dmitems db upgrade`.

    Examples: dmitems init-db; dmitems init-db --drop --yes
    """
    if drop and not yes:
        if not sys.stdin.isatty():
            fail("--drop deletes every item; add --yes to confirm in a non-interactive shell", 2)
        typer.confirm("Drop the items table and every item in it?", abort=True)

    async def work(database: Database) -> dict[str, object]:
        from dmitems.db.schema import create_schema

        return await create_schema(database, drop=drop)

    try:
        outcome = with_database(ctx, work)
    except SchemaMismatch as error:
        _print_differences(error.differences)
        raise
    if as_json:
        print_json(outcome)
    elif outcome["created"]:
        verb = "recreated" if outcome["dropped"] else "created"
        success(f"{verb} table {outcome['table']} in {outcome['url']} (revision {outcome['revision']})")
    elif outcome["stamped"]:
        success(f"table {outcome['table']} in {outcome['url']} already has dmitems' shape; "
                f"stamped revision {outcome['revision']}")
    else:
        success(f"table {outcome['table']} already exists in {outcome['url']}; nothing to do")


def _survey(ctx: typer.Context) -> Survey:
    from dmitems.migrations import survey

    return with_database(ctx, survey)


def _confirm_change(found: Survey, yes: bool) -> None:
    if yes or not found.rows:
        return
    question = f"Change table {found.table} and its {found.rows} row(s)? (take a backup first)"
    if not sys.stdin.isatty():
        fail(f"table {found.table} holds {found.rows} row(s); add --yes to change it", 2)
    typer.confirm(question, abort=True)


def upgrade(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", "--sql", help="Print the SQL for this database; change nothing."),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    fill_price: Annotated[
        Optional[int],
        typer.Option(
            "--fill-price", min=0, show_default=False,
            help="Set NULL or negative prices to this value (otherwise they stop the upgrade).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Take the items table to the latest revision (creates, stamps or converts it).

    Exit 3 when the table differs in ways no revision handles, 2 when rows have a
    NULL or negative price and --fill-price is not given.

    Examples: dmitems db upgrade --dry-run; dmitems db upgrade --yes
    """
    from dmitems.migrations import runner

    found = _survey(ctx)
    if found.action in ("blocked", "drifted"):
        _print_differences(found.report.as_dict()["differences"])
        raise runner.mismatch(found)
    if found.action == "adopt":
        runner.check_prices(found, fill_price)
    if dry_run:
        sql = with_database(ctx, lambda database: runner.dry_run(database, found, fill_price))
        if as_json:
            print_json({**found.as_dict(), "sql": sql})
        else:
            sys.stdout.write(sql or f"-- table {found.table} is at revision {runner.HEAD}; nothing to do\n")
        return
    if found.action in ("upgrade", "adopt"):
        _confirm_change(found, yes)
    summary = with_database(ctx, lambda database: runner.apply(database, found, fill_price))
    _report(found, summary, as_json)


def _report(found: Survey, summary: dict[str, Any], as_json: bool) -> None:
    from dmitems.migrations import HEAD

    if as_json:
        print_json({**found.as_dict(), "summary": summary})
        return
    done = {
        "create": f"created table {found.table}",
        "stamp": f"table {found.table} already had dmitems' shape; stamped",
        "upgrade": f"upgraded table {found.table}",
        "adopt": f"converted table {found.table} ({found.rows} row(s) kept)",
        "current": f"table {found.table} is up to date; nothing to do",
    }[found.action]
    success(f"{done} (revision {HEAD})")
    for column, count in (summary.get("set_to_upgrade_time") or {}).items():
        if count:
            console().print(f"  {column}: {count} row(s) had no readable time; set to the upgrade's time")
    if summary.get("prices_filled"):
        console().print(f"  price: {summary['prices_filled']} row(s) set by --fill-price")


def current(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show the table's revision and whether it matches dmitems' model (changes nothing).

    Example: dmitems db current --json
    """
    found = _survey(ctx)
    if as_json:
        print_json(found.as_dict())
        return
    revision = found.revision or "none (no version row)"
    console().print(f"table {found.table}: revision {revision}; latest {found.as_dict()['head']}; "
                    f"next step: {found.action}", soft_wrap=True, markup=False)
    _print_differences(found.report.as_dict()["differences"])


def history() -> None:
    """List the revisions shipped with this dmitems (no database needed).

    Example: dmitems db history
    """
    from alembic.script import ScriptDirectory

    from dmitems.migrations.runner import script_directory

    scripts: ScriptDirectory = script_directory()
    for script in scripts.walk_revisions():
        console().print(f"{script.down_revision or 'base'} -> {script.revision}: {script.doc}",
                        markup=False, soft_wrap=True)


app.command("upgrade")(upgrade)
app.command("current")(current)
app.command("history")(history)
