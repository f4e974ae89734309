"""What the load is sent to: the database through either engine, or an HTTP server.

Every target runs the same operation mix on the same rows: the rows the
benchmark created itself (:class:`BenchRows`).  ``get`` and ``update`` pick one
of the seeded rows; ``create`` adds a row; ``delete`` removes a row that the
benchmark created earlier (never a seeded row another request may be reading);
``list`` reads the first page (read-only, it may show anyone's rows).

* :class:`AsyncDatabaseTarget`: one task per request over the async engine.
* :class:`SyncDatabaseTarget`: one thread per request over the sync engine.
  Both go through :mod:`dmitems.repository`, so the SQL is identical.
* The HTTP targets are in :mod:`dmitems.bench.http_targets`.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dmitems.bench.load import SKIPPED
from dmitems.bench.spec import LIST_PAGE

if TYPE_CHECKING:
    from dmitems.db import Database

SEED_DESCRIPTION = "dmitems bench row"


class RequestFailed(Exception):
    """A request that failed; ``kind`` is how the report counts it (e.g. ``http_503``)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class Work:
    """One request, decided before it is sent: which operation on which row."""

    operation: str
    item_id: int | None = None
    payload: dict[str, Any] | None = None


class BenchRows:
    """The rows this run created, and nothing else: the only rows it reads by id or changes."""

    def __init__(self, prefix: str, seed: int | None = None) -> None:
        self.prefix = prefix
        self.stable: list[int] = []  # seeded: read and updated, never deleted mid-run
        self.fresh: collections.deque[int] = collections.deque()  # deletable
        self.serial = itertools.count()
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.created = 0
        self.deleted = 0
        self.uncertain: set[int] = set()  # deletes that failed: the row may still exist

    def seed_payloads(self, count: int) -> list[dict[str, Any]]:
        return [self._payload() for _ in range(count)]

    def seeded(self, ids: list[int], deletable: int) -> None:
        with self.lock:
            self.created += len(ids)
            self.fresh.extend(ids[:deletable])
            self.stable.extend(ids[deletable:])

    def _payload(self) -> dict[str, Any]:
        with self.lock:
            price = self.random.randint(1, 10_000)
        return {"name": f"{self.prefix}{next(self.serial)}", "description": SEED_DESCRIPTION,
                "price": price}

    def next(self, operation: str) -> Work | object:
        """The next request for ``operation``, or SKIPPED if there is no row to do it on."""
        if operation in ("get", "update"):
            with self.lock:
                if not self.stable:
                    raise RequestFailed("no_rows")
                item_id = self.random.choice(self.stable)
                price = self.random.randint(1, 10_000)
            payload = {"price": price} if operation == "update" else None
            return Work(operation, item_id, payload)
        if operation == "create":
            return Work(operation, payload=self._payload())
        if operation == "delete":
            try:
                return Work(operation, self.fresh.popleft())
            except IndexError:
                return SKIPPED
        return Work(operation)

    def done(self, work: Work, created_id: int | None = None) -> None:
        if work.operation == "create" and created_id is not None:
            with self.lock:
                self.created += 1
            self.fresh.append(created_id)
        elif work.operation == "delete":
            with self.lock:
                self.deleted += 1

    def failed(self, work: Work) -> None:
        if work.operation == "delete" and work.item_id is not None:
            with self.lock:
                self.uncertain.add(work.item_id)

    def remaining(self) -> list[int]:
        with self.lock:
            return [*self.stable, *self.fresh, *sorted(self.uncertain)]

    def report(self) -> dict[str, int]:
        return {"created": self.created, "deleted": self.deleted}


def _phases(started: float, acquired: float) -> tuple[float, float]:
    return acquired - started, time.perf_counter() - acquired


def _item_create(payload: dict[str, Any]) -> Any:
    from dmitems.schemas import ItemCreate

    # Validation is not what is measured, and the payload is ours: skip it on both sides.
    return ItemCreate.model_construct(**payload)


def _repository_call(items: Any, work: Work) -> Any:
    """The repository call for ``work``: an awaitable on AsyncItems, a result on SyncItems."""
    if work.operation == "get":
        return items.get(work.item_id)
    if work.operation == "list":
        return items.list(0, LIST_PAGE)
    if work.operation == "create":
        return items.create(_item_create(work.payload or {}))
    if work.operation == "update":
        return items.update(work.item_id, work.payload)
    return items.delete(work.item_id)


class _DatabaseTarget:
    mode: str

    def __init__(self, database: Database, rows: BenchRows) -> None:
        self.database = database
        self.rows = rows

    def _finish(self, work: Work, result: Any) -> None:
        self.rows.done(work, getattr(result, "id", None))


class AsyncDatabaseTarget(_DatabaseTarget):
    mode = "async"

    async def open(self, connections: int) -> float:
        return await self.database.warm_up(connections)

    async def pool(self) -> Any:
        return (await self.database.async_engine()).sync_engine.pool

    async def seed(self, count: int, deletable: int) -> None:
        from dmitems.repository import AsyncItems

        async with self.database.begin() as connection:
            created = await AsyncItems(connection, self.database.backend).bulk_create(
                self.rows.seed_payloads(count)
            )
        self.rows.seeded([item.id for item in created], deletable)

    async def call(self, operation: str) -> Any:
        from dmitems.repository import AsyncItems

        work = self.rows.next(operation)
        if not isinstance(work, Work):
            return work
        started = time.perf_counter()
        try:
            async with self.database.connect() as connection:
                acquired = time.perf_counter()
                async with connection.begin():
                    items = AsyncItems(connection, self.database.backend)
                    result = await _repository_call(items, work)
        except BaseException:
            self.rows.failed(work)
            raise
        phases = _phases(started, acquired)
        self._finish(work, result)
        return phases

    async def close(self) -> None:
        await self.database.dispose()


class SyncDatabaseTarget(_DatabaseTarget):
    mode = "sync"

    async def open(self, connections: int) -> float:
        return await asyncio.to_thread(self._open, connections)

    def _open(self, connections: int) -> float:
        """Open ``connections`` pooled connections at once, as Database.warm_up does for async."""
        import contextlib
        from concurrent.futures import ThreadPoolExecutor

        from sqlalchemy import text

        engine = self.database.sync_engine()
        started = time.perf_counter()
        with self.database.translate_errors(), contextlib.ExitStack() as stack:
            with ThreadPoolExecutor(max_workers=connections) as executor:
                opened = list(executor.map(lambda _: engine.connect(), range(connections)))
            for connection in opened:
                stack.callback(connection.close)
            opened[0].execute(text("SELECT 1"))
        return time.perf_counter() - started

    async def pool(self) -> Any:
        return self.database.sync_engine().pool

    async def seed(self, count: int, deletable: int) -> None:
        await asyncio.to_thread(self._seed, count, deletable)

    def _seed(self, count: int, deletable: int) -> None:
        from dmitems.repository import SyncItems

        with self.database.sync_begin() as connection:
            created = SyncItems(connection, self.database.backend).bulk_create(
                self.rows.seed_payloads(count)
            )
        self.rows.seeded([item.id for item in created], deletable)

    def call(self, operation: str) -> Any:
        from dmitems.repository import SyncItems

        work = self.rows.next(operation)
        if not isinstance(work, Work):
            return work
        started = time.perf_counter()
        try:
            with self.database.sync_connect() as connection:
                acquired = time.perf_counter()
                with connection.begin():
                    result = _repository_call(SyncItems(connection, self.database.backend), work)
        except BaseException:
            self.rows.failed(work)
            raise
        phases = _phases(started, acquired)
        self._finish(work, result)
        return phases

    async def close(self) -> None:
        self.database.sync_dispose()
