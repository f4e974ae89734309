"""How a request reaches the database: the one per-request connection dependency.

A route's operation receives a *store*: the repository executor for its mode
(:class:`AsyncStore` over ``AsyncItems``, :class:`SyncStore` over
``SyncItems``), bound to a connection opened for this request only.  The store
adds one thing to the executor, ``insert_batch``: the importer's bulk path.
Stores hand back items as plain dicts (the repository's ``plain`` results),
which the presenters serialise with orjson: the same JSON as ``ItemRead``
without building and dumping a pydantic model per row.

Transactions: a route that runs one statement gets an autocommit connection
where the driver supports it (PostgreSQL: the statement is its own
transaction, so a create is exactly one round trip, with no BEGIN/COMMIT), and
a read-only one on SQLite gets a connection outside any transaction (SQLite
runs a lone SELECT in its own).  On those, the hot single-row statements run
straight on the driver (:mod:`dmitems.db.direct`).  On DM a read-only route
takes no connection of its own: its hot reads go to the Database's read relay,
where a worker thread runs the read, its fetch and the rollback that ends it
on whichever pooled connection is free (:mod:`dmitems.db.relay`).
Everywhere else, and for routes that run several statements, the connection
is inside ``begin()`` and commits when the operation returns, before the
response is sent (``scope="function"``).
"""

from __future__ import annotations

import contextlib
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
# Backends whose one-statement reads run outside begin(): SQLite runs a lone SELECT in its own
# transaction; on DM the read relay rolls each read's implicit transaction back in the same
# worker call (dmitems.db.relay).
_DIRECT_READ_BACKENDS = frozenset({"sqlite", "dm"})


class AsyncStore(AsyncItems):
    """``AsyncItems`` (plain results) plus the importer's bulk insert (COPY on PostgreSQL).

    ``direct``: the connection is used outside any transaction, each statement
    on its own, and the hot single-row statements run straight on the driver
    (see :mod:`dmitems.db.direct`); ``autocommit`` says the rest run in
    SQLAlchemy's AUTOCOMMIT mode.  ``executor``: what runs each statement, given
    (DM's :class:`~dmitems.db.direct.RelayedReads`, which is the connection too).
    """

    def __init__(
        self,
        connection: Any,
        backend: Backend,
        *,
        direct: bool = False,
        autocommit: bool = False,
        executor: Any = None,
    ) -> None:
        if direct and executor is None:
            from dmitems.db.direct import DirectExecutor

            executor = DirectExecutor(connection, autocommit=autocommit)
        super().__init__(connection, backend, plain=True, executor=executor)
        self.backend = backend
        self.executor = executor

    @property
    def direct(self) -> bool:
        return self.executor is not None

    def insert_batch(self, rows: Sequence[Mapping[str, Any]], *, returning: bool) -> Any:
        from dmitems.importer import insert_rows

        # Only a batch create (returning) runs as one statement on its own; the count-only
        # bulk path (COPY, executemany) runs on the connection, which a transaction commits.
        if self.direct and not returning:
            raise RuntimeError("count-only batch routes need transaction=True, not bulk=True")
        return insert_rows(
            self.connection, self.backend, rows, returning=returning, plain=True,
            executor=self.executor,
        )


class SyncStore(SyncItems):
    """``SyncItems`` (plain results) plus the importer's bulk insert (COPY on PostgreSQL)."""

    def __init__(self, connection: Any, backend: Backend) -> None:
        super().__init__(connection, backend, plain=True)
        self.backend = backend

    def insert_batch(self, rows: Sequence[Mapping[str, Any]], *, returning: bool) -> Any:
        from dmitems.importer import insert_rows_sync

        return insert_rows_sync(self.connection, self.backend, rows, returning=returning, plain=True)


Store = AsyncStore | SyncStore


def store_kind(
    backend: Backend, *, transaction: bool, writes: bool = False, bulk: bool = False
) -> tuple[str, bool]:
    """What connection a route's store needs: ``(kind, write turn)``; routes of a kind share
    one store (and, in sync mode, one pool-capacity limit).

    * ``autocommit``: each statement is its own transaction (PostgreSQL single-statement
      routes, and batch creates, which are one statement there);
    * ``direct-read``: a read-only route outside any transaction (SQLite, DM);
    * ``transaction``: everything else, in ``begin()``, taking the write turn if it writes.
    """
    one_statement = not transaction or (bulk and backend.array_insert)
    if one_statement and backend.name in _AUTOCOMMIT_BACKENDS:
        return "autocommit", False
    if not transaction and not writes and backend.name in _DIRECT_READ_BACKENDS:
        return "direct-read", False
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
    direct = kind in ("autocommit", "direct-read")

    if mode == "sync":

        def sync_store() -> Iterator[SyncStore]:
            if autocommit:
                with database.sync_connect() as connection:
                    connection.execution_options(isolation_level="AUTOCOMMIT")
                    yield SyncStore(connection, backend)
            else:
                with database.sync_begin(write=write_turn) as connection:
                    yield SyncStore(connection, backend)

        return sync_store

    async def async_store() -> AsyncIterator[AsyncStore]:
        relay = await database.read_relay() if kind == "direct-read" else None
        if relay is not None:
            from dmitems.db.direct import RelayedReads

            reads = RelayedReads(database, relay)
            try:
                with database.translate_errors():
                    yield AsyncStore(reads, backend, executor=reads)
            finally:
                await reads.close()
        elif direct:
            async with database.connect() as connection:
                yield AsyncStore(connection, backend, direct=True, autocommit=autocommit)
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

