"""The API's direct path (dmitems.db.direct): same results as SQLAlchemy, same errors, really taken."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from dmitems.api.dependencies import AsyncStore, store_dependency
from dmitems.db import direct
from dmitems.errors import ConnectionLost, DatabaseUnavailable, IntegrityViolation, NotFound
from dmitems.schemas import ItemCreate


class Statements:
    """Counts what SQLAlchemy sends to the driver (the direct path sends nothing through it)."""

    def __init__(self, engine: Any) -> None:
        self.sent: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.sent.append(statement)


async def _seed(database: Any, count: int) -> list[dict[str, Any]]:
    rows = [
        {"name": f"商品 {n}", "description": None if n % 2 else f"描述 {n}", "price": n * 7}
        for n in range(count)
    ]
    async with database.begin() as connection:
        return await AsyncStore(connection, database.backend).bulk_create(rows)  # type: ignore[no-any-return]


async def test_direct_results_equal_sqlalchemys(database: Any) -> None:
    direct._PLANS.clear()
    created = await _seed(database, 12)
    engine = await database.async_engine()
    seen = Statements(engine)
    async with database.connect() as connection:
        fast = AsyncStore(connection, database.backend, direct=True,
                          autocommit=database.backend.name == "postgresql")
        got = [await fast.get(row["id"]) for row in created[:3]]
        page = await fast.list(2, 5)
    assert seen.sent == []  # nothing went through SQLAlchemy's execution path
    async with database.connect() as connection:
        plain = AsyncStore(connection, database.backend)
        assert got == [await plain.get(row["id"]) for row in created[:3]]
        assert page == await plain.list(2, 5)
    assert len(seen.sent) == 4
    assert [item["name"] for item in page] == ["商品 2", "商品 3", "商品 4", "商品 5", "商品 6"]
    assert got[0] == created[0]  # same types too: timestamps are datetimes, not text
    usable = [plan for plan in direct._PLANS.values() if plan is not None]
    assert len(usable) == 2, "the get and the page were not both planned for the driver"


async def test_unmarked_and_filtered_statements_go_through_sqlalchemy(database: Any) -> None:
    await _seed(database, 4)
    engine = await database.async_engine()
    seen = Statements(engine)
    async with database.connect() as connection:
        fast = AsyncStore(connection, database.backend, direct=True)
        assert [row["name"] for row in await fast.list(0, 10, "商品 3")] == ["商品 3"]
        assert await fast.count() == 4
        # Once SQLAlchemy has run a statement on the connection, it runs the rest.
        assert (await fast.get(1))["id"] == 1
    assert len(seen.sent) == 3


async def test_missing_row_is_not_found(database: Any) -> None:
    async with database.connect() as connection:
        fast = AsyncStore(connection, database.backend, direct=True)
        with pytest.raises(NotFound):
            await fast.get(424242)


async def test_direct_create_on_postgresql(pg_url: str) -> None:
    """A create on the autocommit store is one statement on asyncpg, committed on its own."""
    from dmitems.config import load_settings
    from dmitems.db import Database
    from dmitems.db.schema import create_schema

    database = Database(load_settings(flags={"database_url": pg_url}))
    await create_schema(database, drop=True)
    try:
        engine = await database.async_engine()
        seen = Statements(engine)
        async with database.connect() as connection:
            store = AsyncStore(connection, database.backend, direct=True, autocommit=True)
            created = await store.create(ItemCreate(name="机械键盘", price=199))
        assert seen.sent == []
        async with database.connect() as connection:
            assert await AsyncStore(connection, database.backend).get(created["id"]) == created

        # A CHECK violation raised by asyncpg maps as it does through SQLAlchemy.
        async with database.begin() as connection:
            await connection.execute(text(
                "ALTER TABLE items ADD CONSTRAINT no_free CHECK (price > 0)"
            ))
        with pytest.raises(IntegrityViolation):
            async with database.connect() as connection:
                store = AsyncStore(connection, database.backend, direct=True, autocommit=True)
                await store.create(ItemCreate(name="free", price=0))
    finally:
        await database.dispose()


async def test_broken_connection_is_invalidated(pg_url: str) -> None:
    from dmitems.config import load_settings
    from dmitems.db import Database
    from dmitems.db.schema import create_schema

    database = Database(load_settings(flags={"database_url": pg_url, "database_pool_size": 1}))
    await create_schema(database, drop=True)
    try:
        created = await _seed(database, 1)
        async with database.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        import asyncpg  # another session ends the pooled connection's backend

        admin = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        with pytest.raises((ConnectionLost, DatabaseUnavailable)):
            async with database.connect() as connection:
                store = AsyncStore(connection, database.backend, direct=True, autocommit=True)
                await store.get(created[0]["id"])
        # The pool dropped the dead connection: the next request gets a new one.
        async with database.connect() as connection:
            store = AsyncStore(connection, database.backend, direct=True, autocommit=True)
            assert (await store.get(created[0]["id"]))["id"] == created[0]["id"]
    finally:
        await database.dispose()


async def test_api_stores_choose_the_direct_path_only_where_it_is_safe(database: Any) -> None:
    """Which routes get a direct store: single statements on PostgreSQL, reads on SQLite."""
    import contextlib

    async def direct_store(**flags: Any) -> bool:
        opener = contextlib.asynccontextmanager(store_dependency(database, "async", **flags))
        async with opener() as store:
            return bool(store.direct)

    postgresql = database.backend.name == "postgresql"
    assert await direct_store(transaction=False, writes=False) is True
    assert await direct_store(transaction=False, writes=True) is postgresql
    assert await direct_store(transaction=True, writes=True) is False
    # A batch create is one statement on PostgreSQL (arrays), so it runs on its own there.
    assert await direct_store(transaction=True, writes=True, bulk=True) is postgresql


async def test_cancelled_query_does_not_poison_the_pool(pg_url: str) -> None:
    """A request cancelled while its statement waits in the server leaves no busy connection."""
    import asyncio

    import asyncpg

    from dmitems.config import load_settings
    from dmitems.db import Database
    from dmitems.db.schema import create_schema

    database = Database(load_settings(flags={"database_url": pg_url, "database_pool_size": 1}))
    await create_schema(database, drop=True)
    created = await _seed(database, 1)
    locker = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")

        async def read() -> Any:
            async with database.connect() as connection:
                store = AsyncStore(connection, database.backend, direct=True, autocommit=True)
                return await store.get(created[0]["id"])

        task = asyncio.ensure_future(read())
        await asyncio.sleep(0.3)  # the SELECT now waits for the lock, inside the server
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await transaction.rollback()
        # The only pooled connection was in the middle of a query: it must be usable again.
        assert (await asyncio.wait_for(read(), 10))["id"] == created[0]["id"]
    finally:
        await locker.close()
        await database.dispose()


async def test_echo_sends_everything_through_sqlalchemy(database_url: str) -> None:
    """With database_echo on, the hot statements are logged like the rest: no direct path."""
    from dmitems.config import load_settings
    from dmitems.db import Database
    from dmitems.db.schema import create_schema

    database = Database(load_settings(flags={"database_url": database_url, "database_echo": True}))
    await create_schema(database, drop=True)
    try:
        created = await _seed(database, 1)
        seen = Statements(await database.async_engine())
        async with database.connect() as connection:
            store = AsyncStore(connection, database.backend, direct=True)
            assert (await store.get(created[0]["id"]))["id"] == created[0]["id"]
        assert len(seen.sent) == 1
    finally:
        await database.dispose()


def test_direct_results_answer_like_sqlalchemys() -> None:
    result = direct.DirectResult([(7, "a"), (8, "b")], ("version", "name"))
    assert result.scalar() == 7 and result.keys() == ("version", "name")
    assert result.first()._mapping == {"version": 7, "name": "a"}  # type: ignore[union-attr]
    assert direct.DirectResult([], ("version",)).scalar() is None
    assert direct.DirectResult([], ("version",)).first() is None


async def test_an_executor_needs_plain_results(database: Any) -> None:
    from dmitems.repository import AsyncItems

    async with database.connect() as connection:
        executor = direct.DirectExecutor(connection, autocommit=False)
        with pytest.raises(ValueError, match="plain"):
            AsyncItems(connection, database.backend, executor=executor)


async def test_a_bad_argument_is_not_a_lost_connection(pg_url: str) -> None:
    """asyncpg's client-side DataError (an argument it cannot encode) keeps the connection."""
    from asyncpg.exceptions._base import DataError

    from dmitems.config import load_settings
    from dmitems.db import Database

    database = Database(load_settings(flags={"database_url": pg_url}))
    try:
        async with database.connect() as connection:
            executor = direct.DirectExecutor(connection, autocommit=True)
            error = await executor._failed("SELECT $1", ["x"], DataError("invalid input for $1"))
            assert not error.connection_invalidated and not connection.invalidated
            lost = await executor._failed("SELECT 1", [], ConnectionResetError("reset"))
            assert lost.connection_invalidated and connection.invalidated
    finally:
        await database.dispose()
