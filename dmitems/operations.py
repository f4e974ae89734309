"""Every item operation, written once: the statements it runs and the logic between them.

An operation is a generator: it yields a *step* (a statement from
:mod:`dmitems.statements`, or ``(statement, parameters)`` with a dict for one
execution or a list of dicts for an executemany), receives the step's
``Result``, and returns the operation's value.  It does no I/O itself: the sync
and async executors in :mod:`dmitems.repository` drive it, so both send the
same SQL and share the logic around it (not found, version conflicts, the
fallbacks for dialects without RETURNING).

What items come back as is the *row shape* the operations are built with:
:data:`MODELS` (validated ``ItemRead``/``ItemPage``, the default) or
:data:`DICTS` (plain dicts with ``ItemRead``'s fields, for adapters that only
serialise them: the HTTP API).
"""

from __future__ import annotations

import builtins
from collections.abc import Generator, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

from dmitems import statements
from dmitems.errors import NotFound, VersionConflict
from dmitems.models import COLUMNS, items
from dmitems.schemas import ItemCreate, ItemPage, ItemRead

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import CursorResult, Row

T = TypeVar("T")
ItemT = TypeVar("ItemT")
PageT = TypeVar("PageT")
# Yields steps, receives each step's Result, returns T.
Operation = Generator[Any, "CursorResult[Any]", T]


class RowShape(Generic[ItemT, PageT]):
    """How rows come back: one item, a list of items, a page."""

    def one(self, row: Row[Any]) -> ItemT:
        raise NotImplementedError

    def many(self, rows: Iterable[Row[Any]]) -> list[ItemT]:
        return [self.one(row) for row in rows]

    def page(self, items: list[ItemT], total: int | None, skip: int, limit: int) -> PageT:
        raise NotImplementedError


class ModelRows(RowShape[ItemRead, ItemPage]):
    """Validated pydantic models: ``ItemRead`` and ``ItemPage``."""

    def one(self, row: Row[Any]) -> ItemRead:
        return ItemRead.model_validate(row._mapping)

    def page(self, items: list[ItemRead], total: int | None, skip: int, limit: int) -> ItemPage:
        return ItemPage(items=items, total=total, skip=skip, limit=limit)


Item = dict[str, Any]


class DictRows(RowShape[Item, Item]):
    """Plain dicts with ``ItemRead``'s fields (the statements select exactly ``COLUMNS``).

    Built straight from the rows: the database is trusted, nothing is validated
    (~0.4 µs a row instead of ~9 µs for an ``ItemRead``).  Timestamps are as the
    driver returns them; a naive one is UTC, as ``ItemRead`` says: serialise with
    ``orjson.OPT_NAIVE_UTC`` to get ``ItemRead``'s JSON byte for byte.  Keys go
    through ``str()``: a Core column's name is a ``quoted_name``, a ``str``
    subclass that orjson refuses as a dict key.  (``Row._mapping`` and ``Row._fields``
    are SQLAlchemy's public row API; the underscore only keeps them clear of column names.)
    """

    def one(self, row: Row[Any]) -> Item:
        return {str(key): value for key, value in row._mapping.items()}

    def many(self, rows: Iterable[Row[Any]]) -> list[Item]:
        rows = list(rows)
        keys = tuple(map(str, rows[0]._fields)) if rows else ()
        return [dict(zip(keys, row)) for row in rows]

    def page(self, items: list[Item], total: int | None, skip: int, limit: int) -> Item:
        return {"items": items, "total": total, "skip": skip, "limit": limit}


MODELS = ModelRows()
DICTS = DictRows()


class ItemOperations(Generic[ItemT, PageT]):
    """Every item operation, as statements plus the logic between them.  No I/O.

    ``returning``: INSERT/UPDATE … RETURNING hands back the row in the same
    round trip; ``array_insert``: a batch can go as three arrays in one
    statement (PostgreSQL's ``unnest``); ``table``: the configured items table.
    """

    def __init__(
        self,
        rows: RowShape[ItemT, PageT],
        *,
        returning: bool,
        array_insert: bool = False,
        table: Table = items,
    ) -> None:
        self.rows = rows
        self.returning = returning
        self.array_insert = array_insert
        # The configured items table ([database] table and schema).
        self.table = table

    def create(self, data: ItemCreate) -> Operation[ItemT]:
        """Insert one item and return it as stored."""
        values = data.model_dump()
        if self.returning:
            result = yield (statements.insert_item(returning=True, table=self.table), values)
            return self.rows.one(result.one())
        result = yield (statements.insert_item(returning=False, table=self.table), values)
        key = result.inserted_primary_key
        assert key is not None  # a one-row INSERT always reports its key
        (new_id,) = key
        result = yield statements.get_item(new_id, table=self.table)
        return self.rows.one(result.one())

    def get(self, item_id: int) -> Operation[ItemT]:
        """The item with this id, or NotFound."""
        result = yield statements.get_item(item_id, table=self.table)
        row = result.first()
        if row is None:
            raise NotFound(f"item {item_id} not found")
        return self.rows.one(row)

    def list(
        self, skip: int = 0, limit: int = 100, name_contains: str | None = None
    ) -> Operation[builtins.list[ItemT]]:
        """A page of items in id order, without the total."""
        result = yield statements.list_items(skip, limit, name_contains, table=self.table)
        return self.rows.many(result.all())

    def count(self, name_contains: str | None = None) -> Operation[int]:
        """How many items there are (matching ``name_contains``)."""
        result = yield statements.count_items(name_contains, table=self.table)
        return int(result.scalar_one())

    def page(
        self,
        skip: int = 0,
        limit: int = 100,
        with_total: bool = True,
        name_contains: str | None = None,
    ) -> Operation[PageT]:
        """A page of items plus, unless skipped, the total: two queries."""
        result = yield statements.list_items(skip, limit, name_contains, table=self.table)
        items = self.rows.many(result.all())
        total = None
        if with_total:
            if skip == 0 and len(items) < limit:
                total = len(items)  # the page holds everything: no COUNT needed
            else:
                result = yield statements.count_items(name_contains, table=self.table)
                total = int(result.scalar_one())
        return self.rows.page(items, total, skip, limit)

    def after(
        self, after_id: int, limit: int, name_contains: str | None = None
    ) -> Operation[builtins.list[Row[Any]]]:
        """Raw rows with an id above ``after_id`` (keyset paging for streaming export)."""
        result = yield statements.items_after(after_id, limit, name_contains, table=self.table)
        return list(result)

    def update(
        self, item_id: int, changes: Mapping[str, Any], expected_version: int | None = None
    ) -> Operation[ItemT]:
        """Apply ``changes`` and bump the version in one atomic statement."""
        statement = statements.update_item(
            item_id, changes, expected_version=expected_version, returning=self.returning,
            table=self.table,
        )
        result = yield statement
        if self.returning:
            row = result.first()
            if row is not None:
                return self.rows.one(row)
        elif result.rowcount:
            result = yield statements.get_item(item_id, table=self.table)
            return self.rows.one(result.one())
        return (yield from self._explain_miss(item_id, expected_version))

    def replace(
        self, item_id: int, data: ItemCreate, expected_version: int | None = None
    ) -> Operation[ItemT]:
        """Set every writable field (PUT semantics)."""
        return (yield from self.update(item_id, data.model_dump(), expected_version))

    def delete(self, item_id: int, expected_version: int | None = None) -> Operation[None]:
        """Delete one item, or raise NotFound / VersionConflict."""
        result = yield statements.delete_item(
            item_id, expected_version=expected_version, table=self.table
        )
        if not result.rowcount:
            yield from self._explain_miss(item_id, expected_version)

    def bulk_insert(self, rows: Sequence[Mapping[str, Any]]) -> Operation[int]:
        """Insert many validated rows with one executemany; no RETURNING."""
        if not rows:
            return 0
        yield (statements.bulk_insert_items(table=self.table), rows)
        return len(rows)

    def bulk_create(self, rows: Sequence[Mapping[str, Any]]) -> Operation[builtins.list[ItemT]]:
        """Insert many validated rows and return them as stored, in input order.

        On PostgreSQL this is one statement with the rows as three arrays
        (``unnest``).  Elsewhere with RETURNING it is one executemany that
        SQLAlchemy batches into multi-row INSERT … RETURNING statements
        ("insertmanyvalues"), asked for in no particular order (SQLAlchemy
        batches an ordered one only where it finds a sentinel column, which
        SQLite lacks) and lined up with the input here.  Without RETURNING
        (DM), each row is inserted and read back in the same transaction.
        """
        if not rows:
            return []
        if self.returning and self.array_insert:
            arrays = {
                "names": [row["name"] for row in rows],
                "descriptions": [row["description"] for row in rows],
                "prices": [row["price"] for row in rows],
            }
            result = yield (statements.bulk_create_from_arrays(table=self.table), arrays)
            return self.rows.many(in_input_order(result.all(), rows))
        if self.returning:
            result = yield (statements.bulk_create_items(table=self.table), rows)
            return self.rows.many(in_input_order(result.all(), rows))
        created = []
        for row in rows:
            created.append((yield from self.create(ItemCreate.model_construct(**row))))
        return created

    def delete_named_like(self, prefix: str) -> Operation[int]:
        """Delete the items whose name starts with ``prefix``; returns how many."""
        result = yield statements.delete_items_named_like(prefix, table=self.table)
        return int(result.rowcount)

    def _explain_miss(self, item_id: int, expected_version: int | None) -> Operation[NoReturn]:
        """Raise NotFound or VersionConflict for a write that matched no row.

        Without an expected version only a missing row makes a write miss, so that is
        NotFound even if a concurrent insert has made the id exist since (asking for its
        version then would report a conflict with no version)."""
        if expected_version is None:
            raise NotFound(f"item {item_id} not found")
        result = yield statements.version_of(item_id, table=self.table)
        current = result.scalar()
        if current is None:
            raise NotFound(f"item {item_id} not found")
        raise VersionConflict(
            f"item {item_id} is at version {current}, not {expected_version}",
            current_version=current,
        )


# Where id, name, description and price sit in a row of COLUMNS (what every statement selects).
_ID, _NAME, _DESCRIPTION, _PRICE = (
    [column.key for column in COLUMNS].index(key) for key in ("id", "name", "description", "price")
)
_content = itemgetter(_NAME, _DESCRIPTION, _PRICE)


def in_input_order(returned: Sequence[Any], rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The rows an unordered INSERT … RETURNING gave back, lined up with the input.

    SQLite (and PostgreSQL, for an INSERT … SELECT) gives each inserted row the next
    id, so sorting by id is input order; the contents are checked against the input
    anyway, and if they do not line up, rows are matched by content (rows with
    equal content are interchangeable).  Rows are read by position: attribute
    access on a thousand rows cost a quarter of a batch request's CPU.
    """
    created = list(returned)
    ids = [row[_ID] for row in created]
    if any(earlier > later for earlier, later in zip(ids, ids[1:])):
        created.sort(key=itemgetter(_ID))
    wanted = [(row["name"], row["description"], row["price"]) for row in rows]
    if len(created) == len(rows) and list(map(_content, created)) == wanted:
        return created
    by_content: dict[tuple[Any, ...], list[Any]] = {}
    for row in reversed(created):
        by_content.setdefault(_content(row), []).append(row)
    return [by_content[want].pop() for want in wanted]
