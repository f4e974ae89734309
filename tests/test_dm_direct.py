"""The API's read path on DM, over the dmPython DRIVER DOUBLE (no DM server can run here).

A one-statement read goes to the Database's read relay (dmitems.db.relay): a
worker thread runs its statement, fetch and rollback in one call
(dmitems.db.dm_compat.read_then_rollback), then takes the next waiting read on
the same connection; the pool does not roll back a second time.  The real
dmAsync and dmSQLAlchemy run on top of the double.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.dm_driver_double import installed

DM_URL = "dm+dmAsync://SYSDBA:Direct_pw1@127.0.0.1:5236"


@pytest.fixture
def double() -> Iterator[Any]:
    with installed() as module:
        yield module


@pytest.fixture
async def database(double: Any) -> AsyncIterator[Any]:
    from dmitems.config import load_settings
    from dmitems.db import Database
    from dmitems.db.schema import create_schema

    database = Database(load_settings(flags={"database_url": DM_URL, "database_pool_size": 1}))
    await create_schema(database)
    try:
        yield database
    finally:
        await database.dispose()


async def _create(database: Any, name: str = "机械键盘") -> dict[str, Any]:
    from dmitems.repository import AsyncItems
    from dmitems.schemas import ItemCreate

    async with database.begin() as connection:
        item = AsyncItems(connection, database.backend, plain=True)
        return await item.create(ItemCreate(name=name, price=199))  # type: ignore[no-any-return]


def _reading(database: Any) -> Any:
    """The store a read-only one-statement API route gets (GET /items/{id}, GET /items)."""
    from dmitems.api.dependencies import store_parameter

    return store_parameter(database, "async", transaction=False, writes=False)


async def _settled(database: Any) -> Any:
    """The async engine, once the relay has given back every connection it held."""
    relay = await database.read_relay()
    await relay.idle(5)
    assert relay._held == 0, "the relay still holds a connection"
    return await database.async_engine()


def _trips(double: Any) -> list[tuple[str, str]]:
    return [
        (call.name, (call.statement or "").split(" ", 1)[0].upper())
        for call in double.calls
        if call.name in ("execute", "executemany", "commit", "rollback", "ping")
    ]


async def test_a_read_is_one_worker_call_with_its_rollback(double: Any, database: Any) -> None:
    from sqlalchemy import text

    from dmitems.repository import AsyncItems

    created = await _create(database)
    double.calls.clear()
    async with _reading(database)() as store:
        assert store.direct
        got = await store.get(created["id"])
        assert store.connection._opened is None  # the request took no connection of its own
    engine = await _settled(database)
    # The read and its rollback, and nothing else: the pool did not roll back again.
    assert _trips(double) == [("execute", "SELECT"), ("rollback", "")]
    assert engine.sync_engine.pool.checkedin() == 1
    execute, rollback = (call for call in double.calls if call.name in ("execute", "rollback"))
    assert execute.thread_id == rollback.thread_id  # one worker call
    assert execute.thread_id != threading.get_ident() and not execute.on_loop_thread
    async with database.connect() as connection:
        assert got == await AsyncItems(connection, database.backend, plain=True).get(created["id"])

    # The next statement through SQLAlchemy on the same pooled connection is rolled back as usual.
    double.calls.clear()
    async with database.connect() as connection:
        await connection.execute(text("SELECT 1 FROM DUAL"))
    assert _trips(double) == [("execute", "SELECT"), ("rollback", "")]


async def test_a_filtered_page_goes_through_sqlalchemy_and_is_rolled_back(
    double: Any, database: Any
) -> None:
    await _create(database, "键盘")
    await _create(database, "鼠标")
    double.calls.clear()
    async with _reading(database)() as store:
        page = await store.list(0, 10, name_contains="键")
    assert [item["name"] for item in page] == ["键盘"]
    await _settled(database)
    trips = _trips(double)
    assert trips[-1] == ("rollback", "") and trips.count(("rollback", "")) == 1
    assert all(name == "execute" for name, _ in trips[:-1])


@pytest.mark.parametrize(
    ("code", "error_name", "dropped"),
    [(-70019, "ConnectionLost", True), (-6403, "DatabaseUnavailable", False)],
)
async def test_a_failed_read_maps_its_error_and_drops_a_lost_connection(
    double: Any, database: Any, code: int, error_name: str, dropped: bool
) -> None:
    from dmitems import errors

    created = await _create(database)
    await database.warm_up(1)
    engine = await database.async_engine()
    double.calls.clear()
    double.fail_next("execute", code, f"simulated failure {code}")
    with pytest.raises(errors.DmitemsError) as caught:
        async with _reading(database)() as store:
            await store.get(created["id"])
    assert type(caught.value).__name__ == error_name
    assert str(code) in caught.value.message
    await _settled(database)
    closed = [call for call in double.calls if call.name == "close"]
    assert bool(closed) is dropped
    if not dropped:
        # Not rolled back in the failed call: the pool rolls back on return, as always.
        assert _trips(double)[-1] == ("rollback", "")
        assert engine.sync_engine.pool.checkedin() == 1
    async with _reading(database)() as store:  # the pool is usable afterwards
        assert (await store.get(created["id"]))["id"] == created["id"]


async def test_a_cancelled_read_returns_its_connection_only_when_the_call_is_done(
    double: Any, database: Any
) -> None:
    created = await _create(database)
    await database.warm_up(1)
    engine = await database.async_engine()
    in_execute = threading.Event()
    double.configure(latency=0.15, on_call=lambda name: name == "execute" and in_execute.set())

    async def read() -> None:
        async with _reading(database)() as store:
            await store.get(created["id"])

    double.calls.clear()
    task = asyncio.create_task(read())
    assert await asyncio.to_thread(in_execute.wait, 5)  # the worker is inside execute now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The task ended only after the worker's execute and rollback were done (the double
    # records a call when it returns): the connection was never shared.
    assert [name for name, _ in _trips(double)] == ["execute", "rollback"]
    await _settled(database)
    assert engine.sync_engine.pool.checkedin() == 1
    double.configure(latency=0)
    async with _reading(database)() as store:
        assert (await store.get(created["id"]))["id"] == created["id"]


async def test_a_read_cancelled_while_it_waits_is_withdrawn(double: Any, database: Any) -> None:
    created = await _create(database)
    await database.warm_up(1)
    double.configure(latency=0.1)

    async def read() -> Any:
        async with _reading(database)() as store:
            return await store.get(created["id"])

    double.calls.clear()
    first = asyncio.create_task(read())
    await asyncio.sleep(0.02)  # the first read holds the only connection
    second = asyncio.create_task(read())
    await asyncio.sleep(0.02)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert not first.done()  # the waiting read left at once, not after the running one
    assert (await first)["id"] == created["id"]
    await _settled(database)
    assert [name for name, _ in _trips(double)] == ["execute", "rollback"]  # never ran


async def test_waiting_reads_are_handed_the_connection_by_the_thread(
    double: Any, database: Any
) -> None:
    """Forty reads on a pool of one: one checkout, every read on a worker thread."""
    from sqlalchemy import event

    created = await _create(database)
    engine = await database.async_engine()
    checkouts: list[int] = []
    event.listen(engine.sync_engine.pool, "checkout", lambda *args: checkouts.append(1))
    double.configure(latency=0.002)
    double.calls.clear()

    async def read() -> Any:
        async with _reading(database)() as store:
            return await store.get(created["id"])

    got = await asyncio.gather(*(read() for _ in range(40)))
    await _settled(database)
    assert all(item == got[0] for item in got) and got[0]["id"] == created["id"]
    assert len(checkouts) <= 2, checkouts  # not one per read
    assert _trips(double) == [("execute", "SELECT"), ("rollback", "")] * 40
    assert not any(call.on_loop_thread for call in double.calls)


async def test_reads_give_the_connection_up_to_a_waiting_transaction(
    double: Any, database: Any
) -> None:
    """A stream of reads on a pool of one does not starve a write that waits for it."""
    created = await _create(database)
    double.configure(latency=0.005)
    finished: list[str] = []

    async def read() -> None:
        async with _reading(database)() as store:
            await store.get(created["id"])
        finished.append("read")

    async def write() -> None:
        await asyncio.sleep(0.03)  # the reads are under way
        async with database.begin():
            finished.append("write")

    await asyncio.gather(write(), *(read() for _ in range(60)))
    await _settled(database)
    assert finished.count("read") == 60
    assert finished.index("write") < 30, finished.index("write")


@contextlib.asynccontextmanager
async def _warm_database(**flags: Any) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    """A Database with these settings, its schema, one item and a warm pool; checked on exit:
    the relay gives back every connection."""
    from dmitems.config import load_settings
    from dmitems.db import Database
    from dmitems.db.schema import create_schema

    database = Database(load_settings(flags={"database_url": DM_URL, **flags}))
    try:
        await create_schema(database)
        created = await _create(database)
        await database.warm_up()
        yield database, created
        await _settled(database)
    finally:
        await database.dispose()


async def _read(database: Any, item_id: int) -> Any:
    async with _reading(database)() as store:
        return await store.get(item_id)


async def test_a_read_is_not_bound_to_a_connection_before_a_thread_takes_it(double: Any) -> None:
    """One worker thread, two connections: the second connection's run waits for the thread,
    and the reads it was opened for are served by the first one, in order, meanwhile."""
    async with _warm_database(database_pool_size=2, dm_executor_threads=1) as (database, item):
        double.configure(latency=0.02)
        finished: list[int] = []

        async def read(index: int) -> None:
            await _read(database, item["id"])
            finished.append(index)

        await asyncio.wait_for(asyncio.gather(*(read(index) for index in range(6))), 10)
        assert finished == list(range(6))


async def test_reads_left_waiting_use_every_connection_that_comes_free(double: Any) -> None:
    async with _warm_database(database_pool_size=4) as (database, item):
        double.configure(latency=0.005)
        async with contextlib.AsyncExitStack() as holders:
            for _ in range(4):  # every connection busy elsewhere
                await holders.enter_async_context(database.connect())
            reads = [asyncio.create_task(_read(database, item["id"])) for _ in range(40)]
            await asyncio.sleep(0.05)
            double.calls.clear()
        await asyncio.wait_for(asyncio.gather(*reads), 10)
        threads = {call.thread_id for call in double.calls if call.name == "execute"}
        assert len(threads) >= 3, "the waiting reads ran on one connection while others were free"


async def test_a_waiting_write_costs_the_reads_one_connection(double: Any) -> None:
    """Each write that waits makes one thread give its connection up, not several."""
    async with _warm_database(database_pool_size=4) as (database, item):
        relay = await database.read_relay()
        released = relay._release
        yields: list[bool] = []

        def counting(connection: Any, broken: Any, yielded: bool) -> None:
            yields.append(yielded)
            released(connection, broken, yielded)

        relay._release = counting
        double.configure(latency=0.002)
        stop = False

        async def reader() -> None:
            while not stop:
                await _read(database, item["id"])

        readers = [asyncio.create_task(reader()) for _ in range(16)]
        await asyncio.sleep(0.1)
        writes = 0
        for _ in range(10):
            async with database.begin():
                writes += 1
            await asyncio.sleep(0.02)
        stop = True
        await asyncio.wait_for(asyncio.gather(*readers), 10)
        assert writes == 10
        assert 1 <= yields.count(True) <= writes, yields.count(True)


async def test_a_read_that_gets_no_connection_in_time_fails_as_a_checkout_would(
    double: Any,
) -> None:
    from dmitems import errors
    from dmitems.config import load_settings
    from dmitems.db import Database
    from dmitems.db.schema import create_schema

    database = Database(load_settings(flags={
        "database_url": DM_URL, "database_pool_size": 1, "database_pool_timeout": 0.2,
    }))
    try:
        await create_schema(database)
        created = await _create(database)
        double.calls.clear()

        async def read() -> Any:
            async with _reading(database)() as store:
                return await store.get(created["id"])

        async with database.connect():  # holds the only connection
            with pytest.raises(errors.DatabaseUnavailable, match="no free database connection"):
                await asyncio.wait_for(read(), 5)  # (a read that never expires fails here)
        assert "execute" not in [name for name, _ in _trips(double)]
        assert (await read())["id"] == created["id"]  # and the relay works afterwards
    finally:
        await database.dispose()


async def test_a_read_whose_connection_cannot_be_opened_gets_the_error(double: Any) -> None:
    from dmitems import errors
    from dmitems.config import load_settings
    from dmitems.db import Database

    database = Database(load_settings(flags={"database_url": DM_URL, "database_pool_size": 1}))
    try:
        double.fail_next("connect", -70028, "simulated: server unreachable")
        with pytest.raises(errors.DmitemsError) as caught:
            async with _reading(database)() as store:
                await store.get(1)
        assert "70028" in caught.value.message
        assert (await _settled(database)).sync_engine.pool.checkedout() == 0
    finally:
        await database.dispose()


async def test_a_read_whose_executor_is_shut_down_fails_in_its_task(
    double: Any, database: Any
) -> None:
    import concurrent.futures

    created = await _create(database)
    loop = asyncio.get_running_loop()
    executor = concurrent.futures.ThreadPoolExecutor(1)
    executor.shutdown()
    original = loop._default_executor  # type: ignore[attr-defined]
    loop._default_executor = executor  # type: ignore[attr-defined]

    async def read() -> Any:
        async with _reading(database)() as store:
            return await store.get(created["id"])

    try:
        task = asyncio.create_task(read())
        done, _ = await asyncio.wait({task}, timeout=5)
        assert task in done, "the task was left waiting forever"
        assert isinstance(task.exception(), RuntimeError)
    finally:
        loop._default_executor = original  # type: ignore[attr-defined]
    engine = await _settled(database)
    assert engine.sync_engine.pool.checkedout() == 0


async def test_a_failed_read_after_a_good_one_is_still_rolled_back(
    double: Any, database: Any
) -> None:
    from dmitems import errors

    created = await _create(database)
    double.calls.clear()
    with pytest.raises(errors.DmitemsError):
        async with _reading(database)() as store:
            await store.get(created["id"])  # ends its transaction: the connection is clean
            double.fail_next("execute", -6403, "simulated lock timeout")
            await store.get(created["id"])  # fails after its execute began
    await _settled(database)
    # The pool still rolled back the failed read's transaction on return.
    assert _trips(double) == [("execute", "SELECT"), ("rollback", ""), ("execute", "SELECT"),
                              ("rollback", "")]


@pytest.mark.filterwarnings("ignore:.*httpx2.*")
def test_the_api_reads_over_dm_go_through_the_relay(double: Any) -> None:
    """The real app (lifespan running) on dm+dmAsync over the driver double."""
    from fastapi.testclient import TestClient

    from dmitems.api import create_app
    from dmitems.config import load_settings
    from dmitems.db import Database
    from dmitems.db.schema import create_schema

    settings = load_settings(
        flags={"database_url": DM_URL, "server_mode": "async", "database_pool_size": 2}
    )

    async def schema() -> None:
        database = Database(settings)
        try:
            await create_schema(database)
        finally:
            await database.dispose()

    asyncio.run(schema())
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        created = client.post("/items", json={"name": "机械键盘", "price": 199})
        assert created.status_code == 201, created.text
        item = created.json()
        double.calls.clear()
        got = client.get(f"/items/{item['id']}")
        assert got.status_code == 200 and got.json() == item
        assert _trips(double) == [("execute", "SELECT"), ("rollback", "")]
        assert all(not call.on_loop_thread for call in double.calls)
        page = client.get("/items", params={"limit": 10, "total": "false"})
        assert page.status_code == 200 and page.json()["items"] == [item]
        missing = client.get(f"/items/{item['id'] + 1000}")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
