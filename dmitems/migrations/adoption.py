"""Taking the seed service's ``items`` table to dmitems' shape (revision 0002).

The seed service (``Base.metadata.create_all`` of its ``Item`` model) made:
``id`` integer (``serial`` on PostgreSQL; on DM whatever the DBA added, often
``INT IDENTITY(1, 1)``), ``name``/``description`` as ours, ``price`` integer
NULL, ``created_at``/``updated_at`` ``VARCHAR(20)`` filled by the database if
at all, no ``version``.

What changes is worked out from the live table (:class:`TableReport`), not
assumed, so the same revision is a no-op on a table revision 0001 created and
finishes a half-done run on DM.  Offline (``--dry-run``) the command hands in
the report it read, so the printed SQL is what the upgrade would send.

Data rules (the README's "Adopting an existing items table"):

* every row keeps id, name, description and price; ``version`` becomes 1;
* timestamp text that parses becomes that time (text without a zone is UTC on
  SQLite and PostgreSQL); NULL or unparsable text becomes the upgrade's own
  time, and the summary counts those rows;
* a NULL or negative price stops the upgrade before anything changes
  (:func:`bad_prices`, checked by the command), unless ``--fill-price`` says
  what to put there;
* new ids carry on after the highest existing one.

Per backend:

* SQLite: timestamps and prices are rewritten in place, then Alembic's batch
  mode rebuilds the table in dmitems' shape (``copy_from``: no reflection, and
  no ``CAST`` of the timestamp text, which SQLite would turn into a number);
* PostgreSQL: ``ALTER ... TYPE ... USING`` with a session-local parse function,
  all in the one transaction of the upgrade;
* DM: Oracle-style ``ADD``/``MODIFY``/``RENAME COLUMN`` through
  :mod:`dmitems.migrations.dm`.  Each timestamp goes through a scratch column
  ``<name>_dmitems``.  DM commits each DDL statement, so a failure half-way
  leaves the steps before it done (a scratch column, a dropped text column, a
  column still nullable); every step here is guarded by the live shape, so
  running ``db upgrade`` again does only what is left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmitems.db.schema import Difference, TableReport

if TYPE_CHECKING:
    from sqlalchemy import Table

TIMESTAMPS = ("created_at", "updated_at")
SCRATCH_SUFFIX = "_dmitems"
SHOWN_IDS = 20


def scratch(column: str) -> str:
    return f"{column}{SCRATCH_SUFFIX}"


def _explained(difference: Difference, report: TableReport, dialect: str) -> bool:
    """Whether revision 0002 knows how to take this difference away."""
    kind, column = difference.kind, (difference.column or "").lower()
    if column in TIMESTAMPS:
        text = report.columns.get(column) == "VARCHAR"
        half_done = column not in report.columns and scratch(column) in report.columns
        return text or half_done or kind in ("nullable", "default")
    if kind == "extra column":
        return column in {scratch(name) for name in TIMESTAMPS}
    if column == "version":
        return kind == "missing column"
    if column == "price":
        return kind == "nullable"
    if kind == "check":
        return "price" in difference.detail
    if column == "id":
        if kind == "type":
            return report.columns.get("id") == "INTEGER"
        # DM cannot make an existing column an identity (see the README).
        return kind == "identity" and dialect != "dm"
    return False


def blocking(report: TableReport, dialect: str) -> list[Difference]:
    """The differences no revision takes away: the table is not one dmitems can adopt."""
    return [d for d in report.differences if not _explained(d, report, dialect)]


def bad_prices(connection: Any, table: Table) -> tuple[list[int], int]:
    """Ids of rows with a NULL or negative price: the first SHOWN_IDS, and how many in all."""
    from sqlalchemy import func, or_, select

    bad = or_(table.c.price.is_(None), table.c.price < 0)
    ids = connection.execute(
        select(table.c.id).where(bad).order_by(table.c.id).limit(SHOWN_IDS)
    ).scalars()
    shown = [int(value) for value in ids]
    total = connection.execute(select(func.count()).select_from(table).where(bad)).scalar()
    return shown, int(total or 0)


def bad_price_message(shown: list[int], total: int) -> str:
    listed = ", ".join(str(value) for value in shown)
    more = f" and {total - len(shown)} more" if total > len(shown) else ""
    return (
        f"{total} row(s) have a NULL or negative price (ids {listed}{more}); nothing was "
        "changed. Fix them, or add --fill-price N to set them to N"
    )


class Plan:
    """What the adoption sends on one backend; a small helper around ``op``."""

    def __init__(self, op: Any, table: Table, report: TableReport, options: dict[str, Any]):
        self.op = op
        self.table = table
        self.report = report
        self.online: bool = options["online"]
        self.fill_price: int | None = options.get("fill_price")
        self.summary: dict[str, Any] = options["summary"]
        context = op.get_context()
        self.dialect = context.dialect
        self.quoted = self.dialect.identifier_preparer.format_table(table)
        self.rows = 0

    def has(self, column: str) -> bool:
        return column in self.report.columns

    def is_text(self, column: str) -> bool:
        return self.report.columns.get(column) == "VARCHAR"

    def execute(self, sql: str) -> None:
        from sqlalchemy import text

        self.op.execute(text(sql))

    def count(self, where: str) -> None | int:
        """Rows matching ``where`` (online only: offline there is nothing to count)."""
        if not self.online:
            return None
        from sqlalchemy import text

        result = self.op.get_bind().execute(text(f"SELECT count(*) FROM {self.quoted} WHERE {where}"))
        return int(result.scalar() or 0)

    def fill_prices(self) -> None:
        if self.fill_price is None or not self.has("price"):
            return
        where = "price IS NULL OR price < 0"
        self.summary["prices_filled"] = self.count(where)
        self.execute(f"UPDATE {self.quoted} SET price = {int(self.fill_price)} WHERE {where}")

    def note_upgrade_time(self, column: str, parsed_null: str) -> None:
        self.summary.setdefault("set_to_upgrade_time", {})[column] = self.count(parsed_null)


def run(op: Any, table: Table, report: TableReport, options: dict[str, Any]) -> None:
    """Revision 0002's body: the steps this backend needs, given the live ``report``."""
    if not report.exists or not report.differences:
        return
    plan = Plan(op, table, report, options)
    if plan.dialect.name == "sqlite":
        from dmitems.migrations.steps import sqlite_steps as steps
    elif plan.dialect.name == "postgresql":
        from dmitems.migrations.steps import postgresql_steps as steps
    else:
        from dmitems.migrations.steps import dm_steps as steps
    steps(plan)
