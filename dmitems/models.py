"""The ``items`` table, as a SQLAlchemy Core ``Table``.

Core, not an ORM class: dmitems builds statements and reads rows, and never maps
rows to objects, while importing ``sqlalchemy.orm`` adds 30-50 % to SQLAlchemy's
import time, which every ``dmitems item ...`` command would pay at start-up.

Rules that come from DM8 (see the README's "DM8 notes"):

* the primary key is declared with ``Identity()``: a plain integer primary key
  gets no IDENTITY under the DM dialect and inserts then fail on NOT NULL;
* strings are ``String(n)`` (``VARCHAR2(n CHAR)`` on DM), never ``Text`` (a LOB);
* no column is named after a DM reserved word (``comment``, ``level``, ``size``, ...);
* timestamps are set by the database, through :class:`utc_now`.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Integer,
    MetaData,
    String,
    Table,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

NAME_MAX = 255
DESCRIPTION_MAX = 500

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}


class utc_now(FunctionElement[datetime]):  # noqa: N801 - reads like SQL's now()
    """The database's current time, with sub-second precision on every backend."""

    type = DateTime(timezone=True)
    inherit_cache = True


@compiles(utc_now)
def _utc_now_default(element: utc_now, compiler: object, **kw: object) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(utc_now, "postgresql")
def _utc_now_postgresql(element: utc_now, compiler: object, **kw: object) -> str:
    # statement_timestamp(), not now(): in a long import transaction each
    # statement still gets its own time.
    return "statement_timestamp()"


@compiles(utc_now, "sqlite")
def _utc_now_sqlite(element: utc_now, compiler: object, **kw: object) -> str:
    # CURRENT_TIMESTAMP has whole seconds only on SQLite.
    return "(STRFTIME('%Y-%m-%d %H:%M:%f', 'now'))"


metadata = MetaData(naming_convention=NAMING_CONVENTION)

# BIGINT everywhere except SQLite, where only INTEGER PRIMARY KEY is the rowid.
ItemId = BigInteger().with_variant(Integer(), "sqlite")

items = Table(
    "items",
    metadata,
    Column("id", ItemId, Identity(start=1, increment=1), primary_key=True, comment="商品ID"),
    Column("name", String(NAME_MAX), nullable=False, comment="商品名称"),
    Column("description", String(DESCRIPTION_MAX), nullable=True, comment="商品描述"),
    Column("price", Integer, nullable=False, comment="价格"),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=utc_now(),
        comment="创建时间",
    ),
    Column(
        "updated_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=utc_now(),
        onupdate=utc_now(),
        comment="更新时间",
    ),
    Column("version", Integer, nullable=False, server_default="1", comment="版本号（乐观锁）"),
    CheckConstraint("price >= 0", name="price_non_negative"),
    comment="商品表",
)
COLUMNS = (
    items.c.id,
    items.c.name,
    items.c.description,
    items.c.price,
    items.c.created_at,
    items.c.updated_at,
    items.c.version,
)
WRITABLE_FIELDS = ("name", "description", "price")

TABLE_OPTION = "dmitems_table"
"""Engine execution option holding the configured items table (see :func:`table_of`)."""


@functools.cache
def items_table(name: str = "items", schema: str | None = None) -> Table:
    """The items table under the name and schema the settings give (``[database] table``
    and ``schema``): a copy made with ``Table.to_metadata``; the shared ``items`` is never
    changed, and is what the defaults return."""
    if name == items.name and schema == items.schema:
        return items
    return items.to_metadata(MetaData(naming_convention=NAMING_CONVENTION), schema=schema, name=name)


def table_of(connection: Any) -> Table:
    """The items table of the engine ``connection`` belongs to (``Database`` sets it)."""
    sync = getattr(connection, "sync_connection", None) or connection  # AsyncConnection
    return sync.get_execution_options().get(TABLE_OPTION, items)  # type: ignore[no-any-return]
