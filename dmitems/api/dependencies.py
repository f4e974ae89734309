"""How a request reaches the database: the one per-request connection dependency.

A route's operation receives a *store*: the repository executor for the
server's mode, bound to a connection opened for this request only.  There are
exactly two ways to the database:

* async mode: :class:`AsyncStore`, i.e. :class:`~dmitems.repository.AsyncItemDicts`
  on an ``AsyncConnection`` from :meth:`dmitems.db.Database.connect` /
  :meth:`~dmitems.db.Database.begin`;
* sync mode: :class:`SyncStore`, i.e. :class:`~dmitems.repository.SyncItemDicts`
  on a ``Connection`` from the sync engine, run in FastAPI's thread pool.

Both run the same statements from :mod:`dmitems.statements` through
SQLAlchemy.  A store adds one thing to its executor, ``insert_batch``: the
batch routes' bulk path.  Stores hand back items as dicts (the repository's
``*ItemDicts`` executors), which the presenters serialise with orjson: the
same JSON as ``ItemRead`` without building and dumping a pydantic model per row.

Transactions (see :func:`store_kind`): on PostgreSQL a route that runs one
statement gets a connection in SQLAlchemy's documented ``AUTOCOMMIT``
isolation level, so the statement is its own transaction and a create is one
round trip, with no BEGIN/COMMIT.  On SQLite and DM a read-only route that
runs one statement gets a plain ``connect()``: the transaction the driver opens
for the read ends with the rollback that closing the connection does anyway
(with ``begin()`` it would be a COMMIT and then the pool's rollback: one more
round trip on DM, one more thread hop on SQLite).  Everything else runs inside
``begin()`` and commits when the operation returns, before the response is sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dmitems.repository import AsyncItemDicts, SyncItemDicts

if TYPE_CHECKING:
    from dmitems.db import Database
    from dmitems.db.base import Backend

# Backends whose drivers switch to autocommit without a round trip.  SQLite is
# left out on purpose: with aiosqlite each switch is a hop to the driver thread,
# which costs more than the COMMIT it saves.
_AUTOCOMMIT_BACKENDS = frozenset({"postgresql"})
_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


class AsyncStore(AsyncItemDicts):
    """``AsyncItemDicts`` plus the batch routes' bulk insert (COPY on PostgreSQL).

    ``autocommit``: the connection is in AUTOCOMMIT mode, each statement its own transaction.
    """

    def __init__(self, connection: Any, backend: Backend, *, autocommit: bool = False) -> None:
        super().__init__(connection, backend)
        self.backend = backend
        self.autocommit = autocommit

    async def insert_batch(self, rows: Sequence[Mapping[str, Any]], *, returning: bool) -> Any:
        if returning:
            return await self.bulk_create(rows)
        # The count-only path (COPY, executemany) may be several statements: it needs
        # the route's transaction to be atomic.
        if self.autocommit:
            raise RuntimeError("count-only batch routes need transaction=True, not bulk=True")
        from dmitems.importer import insert_rows

        return await insert_rows(self.connection, self.backend, rows)


class SyncStore(SyncItemDicts):
    """``SyncItemDicts`` plus the batch routes' bulk insert (COPY on PostgreSQL)."""

    def __init__(self, connection: Any, backend: Backend) -> None:
        super().__init__(connection, backend)
        self.backend = backend

    def insert_batch(self, rows: Sequence[Mapping[str, Any]], *, returning: bool) -> Any:
        if returning:
            return self.bulk_create(rows)
        from dmitems.importer import insert_rows_sync

        return insert_rows_sync(self.connection, self.backend, rows)


Store = AsyncStore | SyncStore


def store_kind(
    backend: Backend, *, transaction: bool, writes: bool = False, bulk: bool = False
) -> tuple[str, bool]:
    """What connection a route's store needs: ``(kind, write turn)``; routes of a kind share
    one store (and, in sync mode, one pool-capacity limit).

    * ``autocommit``: each statement is its own transaction (PostgreSQL single-statement
      routes, and batch creates, which are one statement there);
    * ``read``: a read-only single-statement route elsewhere, on a plain connection whose
      implicit transaction the close rolls back;
    * ``transaction``: everything else, in ``begin()``, taking the write turn if it writes.
    """
    one_statement = not transaction or (bulk and backend.array_insert)
    if one_statement and backend.name in _AUTOCOMMIT_BACKENDS:
        return "autocommit", False
    if not transaction and not writes:
        return "read", False
    return "transaction", writes


def store_dependency(
    database: Database, mode: str, *, transaction: bool, writes: bool = False, bulk: bool = False
) -> Callable[..., Any]:
    """The dependency that opens this request's connection and yields its store.

    ``writes``: the route writes, so its transaction takes the Database's write turn
    (SQLite: one writer at a time in this process, queued instead of lock-polling).
    ``bulk``: the route is one batch create, a single statement where the backend
    sends batches as arrays (PostgreSQL), so that statement can be its transaction.
    See :func:`store_kind`."""
    backend = database.backend
    kind, write_turn = store_kind(backend, transaction=transaction, writes=writes, bulk=bulk)
    autocommit = kind == "autocommit"

    if mode == "sync":

        def sync_store() -> Iterator[SyncStore]:
            if kind != "transaction":
                with database.sync_connect() as connection:
                    if autocommit:
                        connection.execution_options(**_AUTOCOMMIT)
                    yield SyncStore(connection, backend)
            else:
                with database.sync_begin(write=write_turn) as connection:
                    yield SyncStore(connection, backend)

        return sync_store

    async def async_store() -> AsyncIterator[AsyncStore]:
        if kind != "transaction":
            async with database.connect() as connection:
                if autocommit:
                    await connection.execution_options(**_AUTOCOMMIT)
                yield AsyncStore(connection, backend, autocommit=autocommit)
        else:
            async with database.begin(write=write_turn) as connection:
                yield AsyncStore(connection, backend)

    return async_store


def store_parameter(
    database: Database, mode: str, *, transaction: bool, writes: bool, bulk: bool = False
) -> Any:
    """How a route's handler gets its store; released when the operation returns, before
    the response is sent.

    Async mode: an async context manager factory the handler enters around the
    operation (see :func:`dmitems.api.routing.endpoint`); FastAPI's machinery for
    yield-dependencies (an exit stack, a shielded cancel scope and a task context
    per request) costs more than the query on a single-row route.  Sync mode: a
    ``Depends`` resolved before the handler runs in the thread pool, with at most
    pool-capacity requests holding a store at once: a request waiting for a pooled
    connection inside a worker thread would otherwise hold the very thread another
    request needs to finish and give its connection back."""
    opener = store_dependency(database, mode, transaction=transaction, writes=writes, bulk=bulk)
    if mode != "sync":
        return contextlib.asynccontextmanager(opener)
    return _capped(opener, database.settings.pool_capacity)


def _capped(opener: Callable[..., Any], capacity: int) -> Any:
    """``Depends(opener)`` that at most ``capacity`` requests hold at once, waiting on the loop."""
    import inspect

    from fastapi import Depends

    if "max_concurrency" in inspect.signature(Depends).parameters:
        return Depends(opener, scope="function", max_concurrency=capacity)

    # FastAPI before max_concurrency (the newest release for Python 3.10 lacks it): the
    # same thing by hand.  The turn is awaited on the loop, never in a worker thread,
    # and the sync opener then runs in the thread pool as FastAPI would run it.
    import anyio
    from fastapi.concurrency import contextmanager_in_threadpool

    turns: list[Any] = []  # made on first use, inside the server's event loop

    async def capped_store() -> AsyncIterator[Any]:
        if not turns:
            turns.append(anyio.Semaphore(capacity))
        async with turns[0]:
            async with contextmanager_in_threadpool(contextlib.contextmanager(opener)()) as store:
                yield store

    return Depends(capped_store, scope="function")

