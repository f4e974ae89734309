"""Running the revisions: survey the live table, then create, stamp, upgrade or refuse.

:func:`survey` reads everything a decision needs in one connection: the live
table against the model (:func:`dmitems.db.schema.compare_table`), the version
row, the number of rows and the rows whose price cannot be adopted.  Its
``action`` is one of:

=========  ============================================================
create     no table: revision 0001 creates it
stamp      the table already has dmitems' shape but no version row
upgrade    a version row behind the latest revision, the table matches
adopt      the seed service's table (or a half-done adoption): 0002
blocked    differences no revision takes away (listed)
drifted    at the latest revision, yet the table differs (changed by hand)
current    nothing to do
=========  ============================================================

Alembic runs on the async engine's connection through ``run_sync`` inside one
``Database.begin()``: on PostgreSQL the whole upgrade, version row included, is
one transaction.  ``--dry-run`` is Alembic's offline mode with the live
dialect, printing the SQL instead of sending it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dmitems.errors import InvalidInput, SchemaMismatch

if TYPE_CHECKING:
    from sqlalchemy import Table

    from dmitems.db.engines import Database
    from dmitems.db.schema import TableReport

HEAD = "0002"
CHANGES = ("create", "stamp", "upgrade", "adopt")


@dataclass
class Survey:
    table: str
    report: TableReport
    revision: str | None
    action: str
    rows: int = 0
    blocking: list[str] = field(default_factory=list)
    bad_price_ids: list[int] = field(default_factory=list)
    bad_prices: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "revision": self.revision,
            "head": HEAD,
            "action": self.action,
            "rows": self.rows,
            "differences": [difference.line() for difference in self.report.differences],
            "blocking": self.blocking,
        }


def _config(table: Table, **attributes: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "dmitems:migrations")
    config.attributes.update(table=table, summary={}, **attributes)
    return config


def script_directory() -> Any:
    from alembic.script import ScriptDirectory

    from dmitems.models import items

    return ScriptDirectory.from_config(_config(items))


def current_revision(connection: Any, table: Table) -> str | None:
    from alembic.migration import MigrationContext

    import dmitems.migrations.dm  # noqa: F401 - Alembic's implementation for DM

    from dmitems.migrations.environment import VERSION_TABLE

    context = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE, "version_table_schema": table.schema}
    )
    return context.get_current_revision()


def _survey(connection: Any, table: Table) -> Survey:
    from sqlalchemy import func, select

    from dmitems.db.schema import compare_table
    from dmitems.migrations import adoption

    report = compare_table(connection, table)
    revision = current_revision(connection, table)
    survey = Survey(table.name, report, revision, "current")
    if not report.exists:
        survey.action = "create"
        return survey
    survey.rows = int(connection.execute(select(func.count()).select_from(table)).scalar() or 0)
    if report.matches:
        survey.action = "stamp" if revision is None else ("current" if revision == HEAD else "upgrade")
        return survey
    if revision == HEAD:
        survey.action = "drifted"
        return survey
    blocking = adoption.blocking(report, connection.dialect.name)
    if blocking:
        survey.action, survey.blocking = "blocked", [d.line() for d in blocking]
        return survey
    survey.action = "adopt"
    if "price" in report.columns:
        survey.bad_price_ids, survey.bad_prices = adoption.bad_prices(connection, table)
    return survey


async def survey(database: Database) -> Survey:
    async with database.connect() as connection:
        return await connection.run_sync(_survey, database.table)


def mismatch(found: Survey) -> SchemaMismatch:
    """The error for a table that cannot be used as it is (exit 3), naming the fix."""
    count = len(found.report.differences)
    lines = [difference.line() for difference in found.report.differences]
    if found.action == "blocked":
        return SchemaMismatch(
            f"table {found.table} differs from dmitems' model in ways no migration handles "
            f"({'; '.join(found.blocking)}); change those columns by hand, then run "
            "`dmitems db upgrade`",
            lines,
        )
    if found.action == "drifted":
        return SchemaMismatch(
            f"table {found.table} is at revision {HEAD} but was changed since ({count} "
            "difference(s), listed above); restore the columns dmitems needs",
            lines,
        )
    return SchemaMismatch(
        f"table {found.table} does not match dmitems' model ({count} difference(s), listed "
        "above); review the SQL with `dmitems db upgrade --dry-run`, then run `dmitems db upgrade`",
        lines,
    )


def check_prices(found: Survey, fill_price: int | None) -> None:
    from dmitems.migrations.adoption import bad_price_message

    if found.bad_prices and fill_price is None:
        raise InvalidInput(bad_price_message(found.bad_price_ids, found.bad_prices))
    if fill_price is not None and fill_price < 0:
        raise InvalidInput(f"--fill-price must be 0 or more, not {fill_price}")


def offline_sql(
    dialect: Any, found: Survey, fill_price: int | None = None, table: Table | None = None
) -> str:
    """The SQL for ``found`` from Alembic's offline mode, compiled for ``dialect``."""
    from alembic import command

    from dmitems.models import items

    output = io.StringIO()
    config = _config(
        items if table is None else table,
        dialect=dialect,
        report=found.report,
        output=output,
        fill_price=fill_price,
    )
    if found.action == "stamp":
        command.stamp(config, HEAD, sql=True)
    elif found.action in ("create", "upgrade", "adopt"):
        start = f"{found.revision}:" if found.revision else ""
        command.upgrade(config, f"{start}{HEAD}", sql=True)
    return output.getvalue()


async def dry_run(database: Database, found: Survey, fill_price: int | None = None) -> str:
    """The exact SQL ``apply`` would send for ``found``, for a DBA to review."""
    async with database.connect() as connection:
        # The live server's DDL settings (DM: LENGTH_IN_CHAR) apply to the printed SQL too.
        await database.backend.prepare_schema(connection)
        dialect = connection.sync_connection.dialect
    return offline_sql(dialect, found, fill_price, database.table)


def _apply(connection: Any, table: Table, action: str, fill_price: int | None) -> dict[str, Any]:
    from alembic import command

    config = _config(table, connection=connection, fill_price=fill_price)
    if action == "stamp":
        command.stamp(config, HEAD)
    else:
        if action == "create" and current_revision(connection, table) is not None:
            command.stamp(config, "base")  # a version row without its table: start over
        command.upgrade(config, HEAD)
    return dict(config.attributes["summary"])


async def apply(database: Database, found: Survey, fill_price: int | None = None) -> dict[str, Any]:
    """Carry out ``found.action``; returns the upgrade's counts."""
    table = database.table
    if found.action not in CHANGES:
        return {}
    async with database.begin(write=True) as connection:
        facts = await database.backend.prepare_schema(connection)
        if found.action == "adopt" and fill_price is None:
            # Checked again inside the transaction: rows may have come since the survey.
            from dmitems.migrations.adoption import bad_price_message, bad_prices

            shown, total = await connection.run_sync(bad_prices, table)
            if total:
                raise InvalidInput(bad_price_message(shown, total))
        summary = await connection.run_sync(_apply, table, found.action, fill_price)
    return {**facts, **summary}


async def drop(database: Database) -> bool:
    """Drop the items table and dmitems' version table; whether the items table existed."""
    from sqlalchemy import MetaData, Table, inspect

    from dmitems.migrations.environment import VERSION_TABLE

    table = database.table

    def work(connection: Any) -> bool:
        inspector = inspect(connection)
        existed = inspector.has_table(table.name, schema=table.schema)
        if existed:
            table.drop(connection)
        if inspector.has_table(VERSION_TABLE, schema=table.schema):
            Table(VERSION_TABLE, MetaData(), schema=table.schema).drop(connection)
        return existed

    async with database.begin(write=True) as connection:
        return bool(await connection.run_sync(work))


async def ensure_created(database: Database, *, drop_first: bool = False) -> dict[str, Any]:
    """``init-db``: create the table at the latest revision, stamp a matching one, or refuse."""
    dropped = await drop(database) if drop_first else False
    found = await survey(database)
    if found.action in ("adopt", "blocked", "drifted"):
        raise mismatch(found)
    details = await apply(database, found)
    return {
        "url": database.target,
        "backend": database.name,
        "table": ".".join(part for part in (database.table.schema, database.table.name) if part),
        "created": found.action == "create",
        "dropped": dropped,
        "stamped": found.action == "stamp",
        "revision": HEAD,
        **{key: value for key, value in details.items() if key != "set_to_upgrade_time"},
    }
