"""The sync and async executors over :mod:`dmitems.operations`.

Each operation is written once, in :class:`~dmitems.operations.ItemOperations`,
as a generator of statements that does no I/O.  :class:`SyncItems` drives it
with ``Connection.execute``, :class:`AsyncItems` with
``await AsyncConnection.execute``: the CLI, the API and the benchmark run the
same SQL whichever engine they use.  Each executor lists every operation as a
typed method, so callers get ``ItemRead``, ``ItemPage``, ``int``… without casts.

Items come back as validated models (``SyncItems``, ``AsyncItems``) or as
plain dicts with the same fields (``SyncItemDicts``, ``AsyncItemDicts``, for
adapters that only serialise them: the HTTP API).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from dmitems.models import table_of
from dmitems.operations import (
    DICTS, MODELS, Item, ItemOperations, ItemT, Operation, PageT, RowShape,
)
from dmitems.schemas import ItemCreate, ItemPage, ItemRead

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row
    from sqlalchemy.ext.asyncio import AsyncConnection

    from dmitems.db.base import Backend

T = TypeVar("T")
Rows = Sequence[Mapping[str, Any]]


def _split(step: Any) -> tuple[Any, Any]:
    return step if isinstance(step, tuple) else (step, None)


def _operations(connection: Any, backend: Backend, rows: RowShape[ItemT, PageT]) -> Any:
    dialect = connection.dialect
    returning = backend.create_returning and dialect.insert_returning and dialect.update_returning
    return ItemOperations(
        rows, returning=returning, array_insert=backend.array_insert, table=table_of(connection)
    )


class _Sync(Generic[ItemT, PageT]):
    """Item operations on a sync ``Connection``; each method returns its result."""

    def __init__(
        self, connection: Connection, backend: Backend, rows: RowShape[ItemT, PageT]
    ) -> None:
        self.connection = connection
        self.operations: ItemOperations[ItemT, PageT] = _operations(connection, backend, rows)

    def _run(self, operation: Operation[T]) -> T:
        result: Any = None
        while True:
            try:
                step = operation.send(result)
            except StopIteration as done:
                return cast(T, done.value)
            statement, parameters = _split(step)
            result = self.connection.execute(statement, parameters)

    def create(self, data: ItemCreate) -> ItemT:
        return self._run(self.operations.create(data))

    def get(self, item_id: int) -> ItemT:
        return self._run(self.operations.get(item_id))

    def list(
        self, skip: int = 0, limit: int = 100, name_contains: str | None = None
    ) -> builtins.list[ItemT]:
        return self._run(self.operations.list(skip, limit, name_contains))

    def count(self, name_contains: str | None = None) -> int:
        return self._run(self.operations.count(name_contains))

    def page(
        self, skip: int = 0, limit: int = 100, with_total: bool = True,
        name_contains: str | None = None,
    ) -> PageT:
        return self._run(self.operations.page(skip, limit, with_total, name_contains))

    def after(
        self, after_id: int, limit: int, name_contains: str | None = None
    ) -> builtins.list[Row[Any]]:
        return self._run(self.operations.after(after_id, limit, name_contains))

    def update(
        self, item_id: int, changes: Mapping[str, Any], expected_version: int | None = None
    ) -> ItemT:
        return self._run(self.operations.update(item_id, changes, expected_version))

    def replace(self, item_id: int, data: ItemCreate, expected_version: int | None = None) -> ItemT:
        return self._run(self.operations.replace(item_id, data, expected_version))

    def delete(self, item_id: int, expected_version: int | None = None) -> None:
        return self._run(self.operations.delete(item_id, expected_version))

    def bulk_insert(self, rows: Rows) -> int:
        return self._run(self.operations.bulk_insert(rows))

    def bulk_create(self, rows: Rows) -> builtins.list[ItemT]:
        return self._run(self.operations.bulk_create(rows))

    def delete_named_like(self, prefix: str) -> int:
        return self._run(self.operations.delete_named_like(prefix))


class _Async(Generic[ItemT, PageT]):
    """Item operations on an ``AsyncConnection``; each method is a coroutine."""

    def __init__(
        self, connection: AsyncConnection, backend: Backend, rows: RowShape[ItemT, PageT]
    ) -> None:
        self.connection = connection
        self.operations: ItemOperations[ItemT, PageT] = _operations(connection, backend, rows)

    async def _run(self, operation: Operation[T]) -> T:
        execute = self.connection.execute
        result: Any = None
        while True:
            try:
                step = operation.send(result)
            except StopIteration as done:
                return cast(T, done.value)
            statement, parameters = _split(step)
            result = await execute(statement, parameters)

    async def create(self, data: ItemCreate) -> ItemT:
        return await self._run(self.operations.create(data))

    async def get(self, item_id: int) -> ItemT:
        return await self._run(self.operations.get(item_id))

    async def list(
        self, skip: int = 0, limit: int = 100, name_contains: str | None = None
    ) -> builtins.list[ItemT]:
        return await self._run(self.operations.list(skip, limit, name_contains))

    async def count(self, name_contains: str | None = None) -> int:
        return await self._run(self.operations.count(name_contains))

    async def page(
        self, skip: int = 0, limit: int = 100, with_total: bool = True,
        name_contains: str | None = None,
    ) -> PageT:
        return await self._run(self.operations.page(skip, limit, with_total, name_contains))

    async def after(
        self, after_id: int, limit: int, name_contains: str | None = None
    ) -> builtins.list[Row[Any]]:
        return await self._run(self.operations.after(after_id, limit, name_contains))

    async def update(
        self, item_id: int, changes: Mapping[str, Any], expected_version: int | None = None
    ) -> ItemT:
        return await self._run(self.operations.update(item_id, changes, expected_version))

    async def replace(
        self, item_id: int, data: ItemCreate, expected_version: int | None = None
    ) -> ItemT:
        return await self._run(self.operations.replace(item_id, data, expected_version))

    async def delete(self, item_id: int, expected_version: int | None = None) -> None:
        return await self._run(self.operations.delete(item_id, expected_version))

    async def bulk_insert(self, rows: Rows) -> int:
        return await self._run(self.operations.bulk_insert(rows))

    async def bulk_create(self, rows: Rows) -> builtins.list[ItemT]:
        return await self._run(self.operations.bulk_create(rows))

    async def delete_named_like(self, prefix: str) -> int:
        return await self._run(self.operations.delete_named_like(prefix))


class SyncItems(_Sync[ItemRead, ItemPage]):
    """Sync executor; items as ``ItemRead``, pages as ``ItemPage``."""

    def __init__(self, connection: Connection, backend: Backend) -> None:
        super().__init__(connection, backend, MODELS)


class SyncItemDicts(_Sync[Item, Item]):
    """Sync executor; items and pages as plain dicts."""

    def __init__(self, connection: Connection, backend: Backend) -> None:
        super().__init__(connection, backend, DICTS)


class AsyncItems(_Async[ItemRead, ItemPage]):
    """Async executor; items as ``ItemRead``, pages as ``ItemPage``."""

    def __init__(self, connection: AsyncConnection, backend: Backend) -> None:
        super().__init__(connection, backend, MODELS)


class AsyncItemDicts(_Async[Item, Item]):
    """Async executor; items and pages as plain dicts."""

    def __init__(self, connection: AsyncConnection, backend: Backend) -> None:
        super().__init__(connection, backend, DICTS)
