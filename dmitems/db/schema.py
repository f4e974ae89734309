"""The items table as the database has it, compared with the model; creating it.

:func:`compare_table` is the one comparison everything uses (``init-db``,
``db upgrade``, ``doctor``, ``/health``).  It reads the live table through
SQLAlchemy's inspector, so it works the same on SQLite, PostgreSQL and DM, and
reports, one :class:`Difference` each: missing and extra columns, the type
family (and a string that is too short), nullability, the server defaults
dmitems relies on, whether ``id`` is an identity, and the ``price >= 0`` CHECK.

It deliberately ignores what does not change behaviour: comments, constraint
names, a string longer than needed (DM with ``LENGTH_IN_CHAR=0`` sizes strings
in bytes), a default on a column the model gives none.

Creating the table goes through the Alembic revisions (:mod:`dmitems.migrations`),
so a created table always carries its version row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Column, Table
    from sqlalchemy.engine import Connection

    from dmitems.db.engines import Database
    from dmitems.errors import SchemaMismatch


@dataclass(frozen=True)
class Difference:
    """One way the live table differs from the model."""

    kind: str  # missing column, extra column, type, nullable, default, identity, check
    column: str | None
    detail: str

    def line(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass
class TableReport:
    table: str
    exists: bool
    differences: list[Difference] = field(default_factory=list)
    # lower-case column name -> type family (see type_family), as the database has it
    columns: dict[str, str] = field(default_factory=dict)
    nullable: dict[str, bool] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        return self.exists and not self.differences

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "exists": self.exists,
            "matches": self.matches,
            "differences": [difference.line() for difference in self.differences],
        }


def type_family(type_: Any) -> str:
    """What kind of value a column holds, the same word whichever backend reflected it."""
    from sqlalchemy import types

    if isinstance(type_, types.BigInteger):
        return "BIGINT"
    if isinstance(type_, types.SmallInteger):
        return "SMALLINT"
    if isinstance(type_, types.Integer):
        return "INTEGER"
    if isinstance(type_, types.String) and not isinstance(type_, types.Text):
        return "VARCHAR"
    if isinstance(type_, types.DateTime):
        return "TIMESTAMP"
    if isinstance(type_, types.Numeric):
        scale = getattr(type_, "scale", None)
        # DM and Oracle reflect NUMBER(p, 0) for integer columns made elsewhere.
        return "INTEGER" if scale == 0 else "NUMERIC"
    return type(type_).__name__.upper()


def _shown(type_: Any) -> str:
    family = type_family(type_)
    length = getattr(type_, "length", None)
    return f"{family}({length})" if family == "VARCHAR" and length else family


def _normalized_sql(text: Any) -> str:
    return re.sub(r"[\s()'\"`]|::[a-z ]+", "", "" if text is None else str(text)).lower()


def _column_differences(column: Column[Any], info: dict[str, Any], dialect: Any) -> list[Difference]:
    name = column.name
    found: list[Difference] = []
    expected = column.type.dialect_impl(dialect)
    live = info["type"]
    if type_family(expected) != type_family(live):
        found.append(
            Difference("type", name, f"{name} is {_shown(live)}, dmitems needs {_shown(expected)}")
        )
    elif type_family(expected) == "VARCHAR":
        needed, has = getattr(expected, "length", None), getattr(live, "length", None)
        if needed and has and has < needed:
            found.append(
                Difference("type", name, f"{name} is {_shown(live)}, dmitems needs {_shown(expected)}")
            )
    if bool(info.get("nullable", True)) != bool(column.nullable) and not column.primary_key:
        state, wanted = ("allows NULL", "NOT NULL") if info.get("nullable", True) else ("is NOT NULL", "NULL allowed")
        found.append(Difference("nullable", name, f"{name} {state}, dmitems needs {wanted}"))
    if column.server_default is not None and not column.primary_key:
        default = info.get("default")
        wanted = getattr(column.server_default, "arg", None)
        if default is None:
            found.append(Difference("default", name, f"{name} has no default"))
        elif isinstance(wanted, str) and _normalized_sql(default) != _normalized_sql(wanted):
            found.append(
                Difference("default", name, f"{name} defaults to {default}, dmitems needs {wanted}")
            )
    return found


def _identity_difference(
    table: Table, live: dict[str, dict[str, Any]], dialect_name: str
) -> list[Difference]:
    key = table.primary_key.columns[0].name
    info = live.get(key.lower())
    if info is None:
        return []
    if dialect_name == "sqlite":
        # INTEGER PRIMARY KEY is the rowid: new ids follow the highest one.
        if type_family(info["type"]) == "INTEGER" and info.get("primary_key"):
            return []
    elif info.get("identity"):
        return []
    default = str(info.get("default") or "")
    how = "a sequence default (serial)" if "nextval" in default.lower() else "no identity"
    return [Difference("identity", key, f"{key} has {how}, dmitems needs an identity column")]


def _check_differences(inspector: Any, table: Table) -> list[Difference]:
    from sqlalchemy.schema import CheckConstraint

    wanted = [
        constraint for constraint in table.constraints if isinstance(constraint, CheckConstraint)
    ]
    if not wanted:
        return []
    try:
        found = inspector.get_check_constraints(table.name, schema=table.schema)
    except NotImplementedError:  # a dialect that cannot read them: nothing to compare
        return []
    live = {_normalized_sql(check.get("sqltext")) for check in found}
    return [
        Difference("check", None, f"CHECK ({constraint.sqltext}) is missing")
        for constraint in wanted
        if not any(_normalized_sql(constraint.sqltext) in text for text in live)
    ]


def compare_table(connection: Connection, table: Table | None = None) -> TableReport:
    """The live ``table`` (default: the connection's configured items table) against the model."""
    from sqlalchemy import inspect

    from dmitems.models import table_of

    table = table_of(connection) if table is None else table
    inspector = inspect(connection)
    if not inspector.has_table(table.name, schema=table.schema):
        return TableReport(table.name, False)
    columns = inspector.get_columns(table.name, schema=table.schema)
    primary = inspector.get_pk_constraint(table.name, schema=table.schema)
    for info in columns:
        info["primary_key"] = info["name"] in (primary.get("constrained_columns") or [])
    live = {str(info["name"]).lower(): info for info in columns}
    differences: list[Difference] = []
    for column in table.columns:
        info = live.get(column.name.lower())
        if info is None:
            shown = _shown(column.type.dialect_impl(connection.dialect))
            differences.append(
                Difference("missing column", column.name, f"{column.name} ({shown}) is missing")
            )
        else:
            differences += _column_differences(column, info, connection.dialect)
    wanted = {column.name.lower() for column in table.columns}
    differences += [
        Difference("extra column", str(info["name"]), f"{info['name']} is not a dmitems column")
        for name, info in live.items()
        if name not in wanted
    ]
    differences += _identity_difference(table, live, connection.dialect.name)
    differences += _check_differences(inspector, table)
    return TableReport(
        table.name,
        True,
        differences,
        columns={name: type_family(info["type"]) for name, info in live.items()},
        nullable={name: bool(info.get("nullable", True)) for name, info in live.items()},
    )


def _has_table(sync_connection: Any) -> bool:
    from sqlalchemy import inspect

    from dmitems.models import table_of

    table = table_of(sync_connection)
    return bool(inspect(sync_connection).has_table(table.name, schema=table.schema))


async def inspect_schema(database: Database) -> TableReport:
    async with database.connect() as connection:
        return await connection.run_sync(compare_table, database.table)


async def create_schema(database: Database, *, drop: bool = False) -> dict[str, Any]:
    """Create the items table at the latest revision if missing (``drop`` first if asked).

    An existing table that matches is stamped if it has no version row; one that
    does not match raises :class:`~dmitems.errors.SchemaMismatch` (``db upgrade``
    adopts it).  Idempotent.
    """
    from dmitems.migrations import ensure_created

    return await ensure_created(database, drop_first=drop)


async def table_exists(database: Database) -> bool:
    async with database.connect() as connection:
        return bool(await connection.run_sync(_has_table))


def column_missing(target: str, reason: str) -> SchemaMismatch:
    """The error for a statement that met a missing column (every backend's ``classify``)."""
    from dmitems.errors import SchemaMismatch

    return SchemaMismatch(
        f"the items table in {target} lacks a column dmitems needs ({reason}); review the fix "
        "with `dmitems db upgrade --dry-run`, then run `dmitems db upgrade`"
    )
