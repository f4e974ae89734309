"""The API's read path on DM, over the dmPython DRIVER DOUBLE (no DM server can run here).

A read-only route takes a pooled connection inside ``begin()`` like every other
route (dmitems.api.dependencies); these tests pin what that path must keep
doing on DM: errors mapped, a lost connection dropped from the pool, a
cancelled read leaving a usable pool, the pool timeout as a 503-class error.
The real dmAsync and dmSQLAlchemy run on top of the double.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.dm_driver_double import installed

DM_URL = "dm+dmAsync://SYSDBA:Reads_pw1@127.0.0.1:5236"


@pytest.fixture
def double() -> Iterator[Any]:
    with installed() as module:
        yield module


def _database(**flags: Any) -> Any:
    from dmitems.config import load_settings
    from dmitems.db import Database

    return Database(load_settings(flags={"database_url": DM_URL, "database_pool_size": 1, **flags}))


@pytest.fixture
async def database(double: Any) -> AsyncIterator[Any]:
    from dmitems.db.schema import create_schema

    database = _database()
    await create_schema(database)
    try:
        yield database
    finally:
        await database.dispose()


async def _create(database: Any, name: str = "机械键盘") -> dict[str, Any]:
    from dmitems.api.dependencies import AsyncStore
    from dmitems.schemas import ItemCreate

    async with database.begin() as connection:
        return await AsyncStore(connection, database.backend).create(
            ItemCreate(name=name, price=199)
        )


def _reading(database: Any) -> Any:
    """The store a read-only one-statement API route gets (GET /items/{id}, GET /items)."""
    from dmitems.api.dependencies import store_parameter

    return store_parameter(database, "async", transaction=False, writes=False)


def _trips(double: Any) -> list[tuple[str, str]]:
    return [
        (call.name, (call.statement or "").split(" ", 1)[0].upper())
        for call in double.calls
        if call.name in ("execute", "executemany", "commit", "rollback", "ping")
    ]


async def test_a_read_is_its_statement_and_one_rollback(double: Any, database: Any) -> None:
    created = await _create(database)
    double.calls.clear()
    async with _reading(database)() as store:
        assert (await store.get(created["id"]))["name"] == "机械键盘"
    # No COMMIT and then the pool's rollback: closing the connection ends the read's
    # implicit transaction, and the pool does not roll back a second time.
    assert _trips(double) == [("execute", "SELECT"), ("rollback", "")]
    assert all(not call.on_loop_thread for call in double.calls)
    engine = await database.async_engine()
    assert engine.sync_engine.pool.checkedin() == 1


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
    double.calls.clear()
    double.fail_next("execute", code, f"simulated failure {code}")
    with pytest.raises(errors.DmitemsError) as caught:
        async with _reading(database)() as store:
            await store.get(created["id"])
    assert type(caught.value).__name__ == error_name
    assert str(code) in caught.value.message
    closed = [call for call in double.calls if call.name == "close"]
    assert bool(closed) is dropped
    engine = await database.async_engine()
    assert engine.sync_engine.pool.checkedout() == 0
    async with _reading(database)() as store:  # the pool is usable afterwards
        assert (await store.get(created["id"]))["id"] == created["id"]


async def test_a_cancelled_read_leaves_a_usable_pool(double: Any, database: Any) -> None:
    created = await _create(database)
    await database.warm_up(1)
    in_execute = threading.Event()
    double.configure(latency=0.15, on_call=lambda name: name == "execute" and in_execute.set())

    async def read() -> Any:
        async with _reading(database)() as store:
            return await store.get(created["id"])

    task = asyncio.create_task(read())
    assert await asyncio.to_thread(in_execute.wait, 5)  # the worker is inside execute now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    double.configure(latency=0, on_call=None)
    assert (await asyncio.wait_for(read(), 10))["id"] == created["id"]
    engine = await database.async_engine()
    assert engine.sync_engine.pool.checkedout() == 0


async def test_a_read_that_gets_no_connection_in_time_fails_as_a_checkout_would(
    double: Any,
) -> None:
    from dmitems import errors
    from dmitems.db.schema import create_schema

    database = _database(database_pool_timeout=0.2)
    try:
        await create_schema(database)
        created = await _create(database)
        double.calls.clear()

        async def read() -> Any:
            async with _reading(database)() as store:
                return await store.get(created["id"])

        async with database.connect():  # holds the only connection
            with pytest.raises(errors.DatabaseUnavailable, match="no free database connection"):
                await asyncio.wait_for(read(), 5)
        assert "execute" not in [name for name, _ in _trips(double)]
        assert (await read())["id"] == created["id"]  # and reads work afterwards
    finally:
        await database.dispose()


async def test_a_read_whose_connection_cannot_be_opened_gets_the_error(double: Any) -> None:
    from dmitems import errors

    database = _database()
    try:
        double.fail_next("connect", -70028, "simulated: server unreachable")
        with pytest.raises(errors.DmitemsError) as caught:
            async with _reading(database)() as store:
                await store.get(1)
        assert "70028" in caught.value.message
        assert (await database.async_engine()).sync_engine.pool.checkedout() == 0
    finally:
        await database.dispose()


@pytest.mark.filterwarnings("ignore:.*httpx2.*")
def test_the_api_reads_over_dm(double: Any) -> None:
    """The real app (lifespan running) on dm+dmAsync over the driver double."""
    from fastapi.testclient import TestClient

    from dmitems.api import create_app
    from dmitems.config import load_settings
    from dmitems.db.schema import create_schema

    settings = load_settings(
        flags={"database_url": DM_URL, "server_mode": "async", "database_pool_size": 2}
    )

    async def schema() -> None:
        database = _database()
        try:
            await create_schema(database)
        finally:
            await database.dispose()

    asyncio.run(schema())
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        created = client.post("/items", json={"name": "机械键盘", "price": 199})
        assert created.status_code == 201, created.text
        item = created.json()
        got = client.get(f"/items/{item['id']}")
        assert got.status_code == 200 and got.json() == item
        page = client.get("/items", params={"limit": 10, "total": "false"})
        assert page.status_code == 200 and page.json()["items"] == [item]
        missing = client.get(f"/items/{item['id'] + 1000}")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
