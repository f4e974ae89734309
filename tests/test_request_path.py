"""How an API request reaches the database (dmitems.api.dependencies): the store each route
gets, its transaction, and what happens to its connection on errors and cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from dmitems.api.dependencies import AsyncStore, store_dependency, store_kind
from dmitems.config import load_settings
from dmitems.db import Database
from dmitems.db.schema import create_schema
from dmitems.errors import ConnectionLost, DatabaseUnavailable, IntegrityViolation, NotFound
from dmitems.schemas import ItemCreate, ItemRead


def _store(database: Any, **flags: Any) -> Any:
    """The async store a route with these flags gets, as an async context manager."""
    return contextlib.asynccontextmanager(store_dependency(database, "async", **flags))()


async def _seed(database: Any, count: int) -> list[dict[str, Any]]:
    rows = [{"name": f"商品 {n}", "description": None, "price": n * 7} for n in range(count)]
    async with database.begin() as connection:
        return await AsyncStore(connection, database.backend).bulk_create(rows)


@contextlib.asynccontextmanager
async def _postgresql(pg_url: str, **flags: Any) -> AsyncIterator[Database]:
    database = Database(load_settings(flags={"database_url": pg_url, **flags}))
    await create_schema(database, drop=True)
    try:
        yield database
    finally:
        await database.dispose()


async def test_each_route_gets_the_connection_its_statements_need(database: Any) -> None:
    async def kind(**flags: Any) -> str:
        async with _store(database, **flags) as store:
            options = store.connection.sync_connection.get_execution_options()
            assert store.autocommit is (options.get("isolation_level") == "AUTOCOMMIT")
            in_begin = store.connection.in_transaction()
            return "autocommit" if store.autocommit else "transaction" if in_begin else "read"

    postgresql = database.backend.name == "postgresql"
    one_statement = "autocommit" if postgresql else "transaction"
    assert await kind(transaction=False, writes=False) == ("autocommit" if postgresql else "read")
    assert await kind(transaction=False, writes=True) == one_statement
    assert await kind(transaction=True, writes=True) == "transaction"
    # A batch create is one statement on PostgreSQL (arrays), so it runs on its own there.
    assert await kind(transaction=True, writes=True, bulk=True) == one_statement
    assert store_kind(database.backend, transaction=True, writes=True) == ("transaction", True)


async def test_reads_through_the_route_store_equal_the_models(database: Any) -> None:
    from dmitems.repository import AsyncItems

    created = await _seed(database, 6)
    async with _store(database, transaction=False) as store:
        got = await store.get(created[2]["id"])
        page = await store.list(1, 3)
        with pytest.raises(NotFound):
            await store.get(424242)
    async with database.begin() as connection:
        models = AsyncItems(connection, database.backend)
        # Dicts carry the driver's timestamps (naive ones are UTC): equal once validated.
        assert ItemRead.model_validate(got) == await models.get(created[2]["id"])
        assert [ItemRead.model_validate(item) for item in page] == await models.list(1, 3)


@pytest.mark.postgres
async def test_an_autocommit_create_commits_alone_and_maps_errors(pg_url: str) -> None:
    async with _postgresql(pg_url) as database:
        async with _store(database, transaction=False, writes=True) as store:
            created = await store.create(ItemCreate(name="机械键盘", price=199))
            # Visible from another connection before this one is closed: committed on its own.
            async with database.begin() as other:
                assert await AsyncStore(other, database.backend).get(created["id"]) == created
        async with database.begin() as connection:
            await connection.execute(
                text("ALTER TABLE items ADD CONSTRAINT no_free CHECK (price > 0)")
            )
        with pytest.raises(IntegrityViolation):
            async with _store(database, transaction=False, writes=True) as store:
                await store.create(ItemCreate(name="free", price=0))


@pytest.mark.postgres
async def test_a_broken_connection_is_invalidated(pg_url: str) -> None:
    async with _postgresql(pg_url, database_pool_size=1) as database:
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
            async with _store(database, transaction=False) as store:
                await store.get(created[0]["id"])
        # The pool dropped the dead connection: the next request gets a new one.
        async with _store(database, transaction=False) as store:
            assert (await store.get(created[0]["id"]))["id"] == created[0]["id"]


@pytest.mark.postgres
async def test_a_bad_argument_keeps_the_connection(pg_url: str) -> None:
    """asyncpg's client-side DataError (an argument it cannot encode) is no lost connection."""
    from sqlalchemy.exc import DBAPIError

    async with _postgresql(pg_url, database_pool_size=1) as database:
        async with database.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            with pytest.raises(DBAPIError) as caught:
                await connection.execute(text("SELECT CAST(:x AS integer) + 1"), {"x": "abc"})
            assert not caught.value.connection_invalidated and not connection.invalidated
        async with database.connect() as connection:
            assert (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one() == pid


@pytest.mark.postgres
async def test_a_cancelled_query_does_not_poison_the_pool(pg_url: str) -> None:
    """A request cancelled while its statement waits in the server leaves no busy connection."""
    import asyncpg

    async with _postgresql(pg_url, database_pool_size=1) as database:
        created = await _seed(database, 1)
        locker = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")

            async def read() -> Any:
                async with _store(database, transaction=False) as store:
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
