"""How the Database hands out connections and write turns, and bulk creates.

* SQLite write transactions in one process take turns (``begin(write=True)``,
  ``sync_begin(write=True)``) instead of colliding on SQLite's lock;
* pooled connections go to waiters first come, first served, with the pool's timeout;
* a bulk create with RETURNING is batched on SQLite too, and keeps input order.

Real SQLite files and the suite's real PostgreSQL; no mocks.
"""

from __future__ import annotations

import asyncio
import threading
from collections import namedtuple
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dmitems.config import load_settings
from dmitems.db import Database
from dmitems.db.schema import create_schema
from dmitems.errors import DatabaseUnavailable, IntegrityViolation
from dmitems.operations import in_input_order
from dmitems.repository import AsyncItemDicts, AsyncItems, SyncItems
from dmitems.schemas import ItemCreate


def sqlite_database(tmp_path: Any, **flags: Any) -> Database:
    settings = load_settings(flags={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
                                    "database_pool_size": 5, **flags})
    return Database(settings)


@pytest.fixture
async def sqlite_db(tmp_path: Any) -> AsyncIterator[Database]:
    database = sqlite_database(tmp_path)
    await create_schema(database, drop=True)
    yield database
    await database.dispose()


# -- the SQLite write gate --------------------------------------------------------


async def test_sqlite_async_writers_take_turns(sqlite_db: Database) -> None:
    inside = 0
    most = 0

    async def writer(number: int) -> None:
        nonlocal inside, most
        async with sqlite_db.begin(write=True) as connection:
            inside += 1
            most = max(most, inside)
            await AsyncItems(connection, sqlite_db.backend).create(
                ItemCreate(name=f"w{number}", price=number))
            await asyncio.sleep(0.01)  # hold the write lock across an await
            inside -= 1

    await asyncio.gather(*(writer(number) for number in range(8)))
    assert most == 1
    async with sqlite_db.begin() as connection:
        assert await AsyncItems(connection, sqlite_db.backend).count() == 8


async def test_sqlite_readers_do_not_wait_for_the_writer(sqlite_db: Database) -> None:
    async with sqlite_db.begin(write=True) as connection:
        await AsyncItems(connection, sqlite_db.backend).create(ItemCreate(name="a", price=1))
        # A reader meanwhile (WAL): it sees the last committed state, without waiting.
        async with sqlite_db.begin() as reader:
            assert await asyncio.wait_for(
                AsyncItems(reader, sqlite_db.backend).count(), 5) == 0


async def test_sqlite_write_turn_waits_at_most_busy_timeout(tmp_path: Any) -> None:
    database = sqlite_database(tmp_path, database_busy_timeout=0.2)
    await create_schema(database, drop=True)
    try:
        async with database.begin(write=True):
            with pytest.raises(DatabaseUnavailable, match="busy"):
                async with database.begin(write=True):
                    pass  # pragma: no cover - never entered
        async with database.begin(write=True) as connection:  # the turn was given back
            await AsyncItems(connection, database.backend).create(ItemCreate(name="b", price=2))
    finally:
        await database.dispose()


async def test_sqlite_sync_writers_take_turns(sqlite_db: Database) -> None:
    inside = 0
    most = 0
    lock = threading.Lock()
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        nonlocal inside, most
        try:
            with sqlite_db.sync_begin(write=True) as connection:
                with lock:
                    inside += 1
                    most = max(most, inside)
                SyncItems(connection, sqlite_db.backend).create(
                    ItemCreate(name=f"s{number}", price=number))
                threading.Event().wait(0.01)
                with lock:
                    inside -= 1
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and most == 1
    with sqlite_db.sync_begin() as connection:
        assert SyncItems(connection, sqlite_db.backend).count() == 6
    sqlite_db.sync_dispose()


async def test_write_turns_are_sqlite_only(database: Database) -> None:
    if database.backend.name == "sqlite":
        assert database._sync_gate is not None
    else:
        assert database._sync_gate is None
        async with database.begin(write=True), database.begin(write=True):
            pass  # two write transactions at once: the database sorts them out


# -- pool slots, first come first served ---------------------------------------------


async def test_connections_go_to_waiters_in_arrival_order(tmp_path: Any) -> None:
    database = sqlite_database(tmp_path, database_pool_size=1)
    await create_schema(database, drop=True)
    order: list[str] = []
    first_in = asyncio.Event()
    try:

        async def waiter(name: str) -> None:
            async with database.connect():
                order.append(name)

        async def holder() -> None:
            async with database.connect():
                order.append("A")
                first_in.set()
                await asyncio.sleep(0.05)  # B, C, D line up meanwhile
            # Straight back in line, without yielding: must go behind B, C and D.
            async with database.connect():
                order.append("A again")

        task = asyncio.create_task(holder())
        await first_in.wait()
        waiters = []
        for name in "BCD":
            waiters.append(asyncio.create_task(waiter(name)))
            await asyncio.sleep(0.005)
        await asyncio.gather(task, *waiters)
        assert order == ["A", "B", "C", "D", "A again"]
    finally:
        await database.dispose()


async def test_no_free_connection_within_pool_timeout(tmp_path: Any) -> None:
    database = sqlite_database(tmp_path, database_pool_size=1, database_pool_timeout=0.2)
    await create_schema(database, drop=True)
    try:
        async with database.connect():
            with pytest.raises(DatabaseUnavailable, match="no free database connection"):
                async with database.connect():
                    pass  # pragma: no cover - never entered
        async with database.begin() as connection:  # the slot was given back
            assert await AsyncItems(connection, database.backend).count() == 0
    finally:
        await database.dispose()


async def test_sqlite_executemany_rowcount_and_errors_through_the_async_engine(sqlite_db: Database) -> None:
    items = [{"name": f"n{i}", "description": None, "price": i} for i in range(5)]
    async with sqlite_db.begin(write=True) as connection:
        store = AsyncItems(connection, sqlite_db.backend)
        assert await store.bulk_insert(items) == 5  # executemany
        assert await store.delete_named_like("n") == 5  # rowcount
    from sqlalchemy import text

    async with sqlite_db.begin(write=True) as connection:
        result = await connection.execute(
            text("INSERT INTO items (name, price) VALUES ('x', 1)"))
        assert result.lastrowid and result.rowcount == 1
    with pytest.raises(IntegrityViolation):  # errors still come out mapped
        async with sqlite_db.begin(write=True) as connection:
            await connection.execute(text("INSERT INTO items (name, price) VALUES ('y', -1)"))
    async with sqlite_db.begin() as connection:  # rolled back, connection still good
        assert await AsyncItems(connection, sqlite_db.backend).count() == 1


# -- bulk create: batched and in input order ------------------------------------------


async def test_bulk_create_is_batched_andin_input_order(database: Database) -> None:
    rows = [{"name": f"批量{i % 7}", "description": None if i % 3 else "d", "price": i % 5}
            for i in range(1000)]
    async with database.begin(write=True) as connection:
        created = await AsyncItems(connection, database.backend).bulk_create(rows)
    assert [(c.name, c.description, c.price) for c in created] == [
        (r["name"], r["description"], r["price"]) for r in rows]
    assert [c.id for c in created] == sorted(c.id for c in created)
    assert len({c.id for c in created}) == 1000


async def test_bulk_create_on_sqlite_is_not_row_at_a_time(sqlite_db: Database) -> None:
    from sqlalchemy import event

    sent: list[str] = []
    engine = await sqlite_db.async_engine()
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: sent.append(statement))
    rows = [{"name": f"r{i}", "description": None, "price": i} for i in range(1000)]
    async with sqlite_db.begin(write=True) as connection:
        created = await AsyncItemDicts(connection, sqlite_db.backend).bulk_create(rows)
    assert [item["name"] for item in created] == [row["name"] for row in rows]
    assert 1 <= len(sent) <= 3  # multi-row INSERT ... RETURNING batches, not 1,000 INSERTs


def test_rows_returned_out_of_order_are_lined_up_with_the_input() -> None:
    Row = namedtuple("Row", "id name description price")
    wanted = [{"name": n, "description": None, "price": p}
              for n, p in [("a", 1), ("b", 2), ("a", 1), ("c", 3)]]
    in_order = [Row(10, "a", None, 1), Row(11, "b", None, 2), Row(12, "a", None, 1),
                Row(13, "c", None, 3)]
    assert in_input_order(list(reversed(in_order)), wanted) == in_order
    # ids that do not follow the input (not what SQLite does): matched by content.
    odd = [Row(5, "c", None, 3), Row(6, "a", None, 1), Row(7, "b", None, 2), Row(8, "a", None, 1)]
    lined_up = in_input_order(list(odd), wanted)
    assert [(r.name, r.price) for r in lined_up] == [(w["name"], w["price"]) for w in wanted]
    assert sorted(r.id for r in lined_up) == [5, 6, 7, 8]


async def test_slots_hand_over_in_order_and_survive_timeouts_and_cancels() -> None:
    from dmitems.db.slots import Slots

    slots = Slots(1)
    await slots.take(1)
    with pytest.raises(TimeoutError):
        await slots.take(0.05)  # expired waiters are skipped later
    first = asyncio.create_task(slots.take(5))
    second = asyncio.create_task(slots.take(5))
    await asyncio.sleep(0.01)
    slots.give()  # handed to `first`...
    first.cancel()  # ...which is cancelled before it runs: it must pass the slot on
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)
    assert slots.free == 0
    slots.give()
    assert slots.free == 1
