"""How a request reaches the database: the one per-request connection dependency.

A route's operation receives a *store*: the repository executor for its mode
(:class:`AsyncStore` over ``AsyncItems``, :class:`SyncStore` over
``SyncItems``), bound to a connection opened for this request only.  The store
adds one thing to the executor, ``insert_batch``: the importer's bulk path.

Transactions: a route that runs one statement gets an autocommit connection
where the driver supports it (PostgreSQL: the statement is its own
transaction, so a create is exactly one round trip, with no BEGIN/COMMIT);
elsewhere, and for routes that run several statements, the connection is
inside ``begin()`` and commits when the operation returns, before the response
is sent (``scope="function"``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dmitems.repository import AsyncItems, SyncItems

if TYPE_CHECKING:
    from dmitems.db import Database
    from dmitems.db.base import Backend

# Backends whose drivers switch to autocommit without a round trip.  SQLite is
# left out on purpose: with aiosqlite each switch is a hop to the driver thread,
# which costs more than the COMMIT it saves.
_AUTOCOMMIT_BACKENDS = frozenset({"postgresql"})


class AsyncStore(AsyncItems):
    """``AsyncItems`` plus the importer's bulk insert (COPY on PostgreSQL)."""

    def __init__(self, connection: Any, backend: Backend) -> None:
        super().__init__(connection, backend)
        self.backend = backend

    def insert_batch(self, rows: Sequence[Mapping[str, Any]], *, returning: bool) -> Any:
        from dmitems.importer import insert_rows

        return insert_rows(self.connection, self.backend, rows, returning=returning)


class SyncStore(SyncItems):
    """``SyncItems`` plus the same bulk statements the importer runs (executemany)."""

    def insert_batch(self, rows: Sequence[Mapping[str, Any]], *, returning: bool) -> Any:
        return self.bulk_create(rows) if returning else self.bulk_insert(rows)


Store = AsyncStore | SyncStore


def store_dependency(database: Database, mode: str, *, transaction: bool) -> Callable[..., Any]:
    """The dependency that opens this request's connection and yields its store."""
    backend = database.backend
    autocommit = not transaction and backend.name in _AUTOCOMMIT_BACKENDS

    if mode == "sync":

        def sync_store() -> Iterator[SyncStore]:
            if autocommit:
                with database.sync_connect() as connection:
                    connection.execution_options(isolation_level="AUTOCOMMIT")
                    yield SyncStore(connection, backend)
            else:
                with database.sync_begin() as connection:
                    yield SyncStore(connection, backend)

        return sync_store

    async def async_store() -> AsyncIterator[AsyncStore]:
        if autocommit:
            async with database.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                yield AsyncStore(connection, backend)
        else:
            async with database.begin() as connection:
                yield AsyncStore(connection, backend)

    return async_store


def store_parameter(database: Database, mode: str, *, transaction: bool) -> Any:
    """``Depends`` for a route's store: released when the operation returns, before the
    response is sent.  In sync mode at most pool-capacity requests hold a store at once:
    a request waiting for a pooled connection inside a worker thread would otherwise
    hold the very thread another request needs to finish and give its connection back."""
    from fastapi import Depends

    limit = database.settings.pool_capacity if mode == "sync" else None
    return Depends(
        store_dependency(database, mode, transaction=transaction),
        scope="function",
        max_concurrency=limit,
    )

