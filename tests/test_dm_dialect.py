"""dmitems' dm+dmAsync dialect, over the dmPython DRIVER DOUBLE (no DM server can run here).

The real dmAsync and dmSQLAlchemy run unmodified on top of the double; only the
C driver is replaced.  See tests/dm_driver_double/dmPython.py.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dm_driver_double import installed

PASSWORD = "Secret_pw1"
DM_URL = f"dm+dmAsync://SYSDBA:{PASSWORD}@127.0.0.1:5236"


@pytest.fixture
def double() -> Iterator[Any]:
    with installed() as module:
        yield module


def dm_settings(**flags: Any) -> Any:
    from dmitems.config import load_settings

    return load_settings(flags={"database_url": DM_URL, **flags})


def calls_named(double: Any, *names: str) -> list[Any]:
    return [call for call in double.calls if call.name in names]


def upstream_classes() -> dict[str, Any]:
    """Every class of the DM packages that dmitems' dialect builds on or works around."""
    import dmAsync
    from dmSQLAlchemy import dmasync, dmpython, extensions

    classes = {
        f"{module.__name__}.{name}": value
        for module in (dmasync, dmpython, extensions)
        for name, value in vars(module).items()
        if isinstance(value, type) and value.__module__ == module.__name__
    }
    classes.update({"dmAsync.Connection": dmAsync.Connection, "dmAsync.Cursor": dmAsync.Cursor})
    return classes


def snapshot() -> dict[str, dict[str, Any]]:
    return {name: dict(vars(cls)) for name, cls in upstream_classes().items()}


async def test_create_async_engine_builds_the_registered_dialect(double: Any) -> None:
    from dmSQLAlchemy.dmasync import DMDialectAsync_dmasync
    from sqlalchemy.ext.asyncio import create_async_engine

    from dmitems.db.dm import register_dialect
    from dmitems.db.dm_dialect import DMDialect

    register_dialect()
    for url in (DM_URL, DM_URL.replace("dmAsync", "dmasync")):
        engine = create_async_engine(url)
        try:
            assert type(engine.dialect) is DMDialect
            assert isinstance(engine.dialect, DMDialectAsync_dmasync)
        finally:
            await engine.dispose()


async def test_the_installed_packages_are_unchanged_by_dmitems(double: Any) -> None:
    from sqlalchemy import text

    from dmitems.db import Database, dm_defects
    from dmitems.db.schema import create_schema
    from dmitems.repository import AsyncItems

    before = snapshot()
    database = Database(dm_settings(database_pool_size=2, database_pool_pre_ping=True))
    try:
        await create_schema(database)
        async with database.begin() as connection:
            items = AsyncItems(connection, database.backend)
            await items.bulk_insert([{"name": "a", "description": None, "price": 1}] * 3)
            await connection.execute(text("SELECT 1 FROM DUAL"))
        dm_defects.report()
    finally:
        await database.dispose()
    after = snapshot()
    assert after.keys() == before.keys()
    for name, attributes in before.items():
        assert after[name] == attributes, f"{name} was changed"
    from dmSQLAlchemy.dmasync import AsyncAdapt_dmasync_connection

    assert vars(AsyncAdapt_dmasync_connection)["_connection"] is None  # the defect is upstream's


async def test_connect_execute_commit_run_off_the_loop_thread(double: Any) -> None:
    from sqlalchemy import text

    from dmitems.db import Database

    database = Database(dm_settings(database_pool_size=2))
    try:
        async with database.begin() as connection:
            value = (await connection.execute(text("SELECT 1 FROM DUAL"))).scalar()
    finally:
        await database.dispose()
    assert value == 1
    names = {call.name for call in double.calls}
    assert {"connect", "execute", "commit", "close"} <= names
    on_loop = [(call.name, call.statement) for call in double.calls if call.on_loop_thread]
    assert on_loop == []
    assert all(call.thread_id != threading.get_ident() for call in double.calls)


async def test_setup_queries_run_in_the_login_thread(double: Any) -> None:
    from dmitems.db import Database
    from dmitems.db.dm_dialect import SETUP_QUERIES

    database = Database(dm_settings(database_pool_size=1))
    try:
        await database.warm_up(1)
    finally:
        await database.dispose()
    login = calls_named(double, "connect")[0]
    setup = [call for call in double.calls if call.statement in SETUP_QUERIES]
    assert [call.statement for call in setup] == list(SETUP_QUERIES)
    assert {call.thread_id for call in setup} == {login.thread_id}
    assert not login.on_loop_thread


async def test_thirty_concurrent_logins_all_run_in_worker_threads(double: Any) -> None:
    from dmitems.db import Database

    double.configure(login_latency=0.02)
    database = Database(dm_settings(database_pool_size=30))
    try:
        await database.warm_up(30)
    finally:
        await database.dispose()
    logins = calls_named(double, "connect")
    assert len(logins) == 30
    assert not [call for call in logins if call.on_loop_thread]
    assert len(calls_named(double, "close")) == 30  # and each logout, off the loop too
    assert not [call for call in calls_named(double, "close") if call.on_loop_thread]


async def test_a_cancelled_connect_closes_the_connection_its_login_opened(double: Any) -> None:
    from dmitems.db import Database

    logging_in = threading.Event()
    double.configure(login_latency=0.2, on_call=lambda name: name == "connect" and logging_in.set())
    database = Database(dm_settings(database_pool_size=1))
    try:
        engine = await database.async_engine()
        task = asyncio.create_task(engine.connect().start())
        assert await asyncio.to_thread(logging_in.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):  # the login finishes in its thread, then closes what it opened
            if calls_named(double, "close"):
                break
            await asyncio.sleep(0.02)
    finally:
        await database.dispose()
    assert len(calls_named(double, "connect")) == 1
    assert len(calls_named(double, "close")) == 1


async def test_pre_ping_sends_a_query_and_replaces_a_dead_connection(double: Any) -> None:
    from sqlalchemy import text

    from dmitems.db import Database

    database = Database(dm_settings(database_pool_size=1, database_pool_pre_ping=True))
    try:
        async with database.connect() as connection:
            await connection.execute(text("SELECT 1"))
        double.calls.clear()
        async with database.connect() as connection:  # pinged on checkout
            await connection.execute(text("SELECT 1"))
        assert [call.statement for call in calls_named(double, "execute")] == [
            "SELECT 1 FROM DUAL", "SELECT 1",
        ]
        double.fail_next("execute", -70019, "simulated: network communication failure")
        double.calls.clear()
        async with database.connect() as connection:  # the ping fails: a new connection
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await database.dispose()
    assert calls_named(double, "connect"), "the dead connection was not replaced"
    assert not [call for call in double.calls if call.on_loop_thread]


async def test_a_rollback_is_sent_only_when_a_transaction_may_be_open(double: Any) -> None:
    from sqlalchemy import text

    from dmitems.db import Database

    database = Database(dm_settings(database_pool_size=1))
    select_one = text("SELECT 1 FROM DUAL")
    try:
        await database.warm_up(1)
        double.calls.clear()
        async with database.begin() as connection:  # committed: the pool's reset is free
            await connection.execute(select_one)
        async with database.connect() as connection:  # not committed: the pool rolls back
            await connection.execute(select_one)
        async with database.begin():  # nothing ran: nothing to commit or reset
            pass
    finally:
        await database.dispose()
    trips = [call.name for call in calls_named(double, "execute", "commit", "rollback")]
    assert trips == ["execute", "commit", "execute", "rollback"]


async def test_bulk_insert_uses_executemany_without_returning(double: Any) -> None:
    from dmitems.db import Database
    from dmitems.db.schema import create_schema
    from dmitems.repository import AsyncItems

    database = Database(dm_settings(database_pool_size=2))
    rows = [{"name": f"n{i}", "description": None, "price": i} for i in range(5)]
    try:
        await create_schema(database)
        async with database.begin() as connection:
            items = AsyncItems(connection, database.backend)
            assert await items.bulk_insert(rows) == 5
            created = await items.bulk_create(rows[:3])
            assert await items.count() == 8
    finally:
        await database.dispose()
    bulk = calls_named(double, "executemany")
    assert len(bulk) == 1
    assert bulk[0].statement.upper().startswith("INSERT INTO ITEMS")
    assert "RETURNING" not in bulk[0].statement.upper()
    assert not bulk[0].on_loop_thread
    assert [item.name for item in created] == ["n0", "n1", "n2"]
    assert len({item.id for item in created}) == 3


async def test_orm_add_all_of_several_objects(double: Any) -> None:
    from sqlalchemy import func, select
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from dmitems.db import Database
    from dmitems.db.schema import create_schema
    from sqlalchemy.orm import DeclarativeBase

    from dmitems.models import items

    class Base(DeclarativeBase):
        pass

    class Item(Base):
        __table__ = items

    database = Database(dm_settings(database_pool_size=1))
    try:
        await create_schema(database)
        sessions = async_sessionmaker(await database.async_engine(), expire_on_commit=False)
        async with sessions() as session, session.begin():
            added = [Item(name=f"orm{i}", price=i) for i in range(3)]
            session.add_all(added)
            await session.flush()
            assert len({item.id for item in added}) == 3 and all(item.id for item in added)
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Item)) == 3
    finally:
        await database.dispose()
    assert not [call for call in double.calls if call.on_loop_thread]


async def test_dialect_keyword_arguments_land_where_they_are_named(double: Any) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from dmitems.db.dm import register_dialect

    register_dialect()
    engine = create_async_engine(DM_URL, arraysize=7)
    try:
        assert engine.dialect.arraysize == 7
        assert engine.dialect.autocommit is False
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("operation", "code", "error_name", "exit_code"),
    [
        ("connect", -70028, "DatabaseUnreachable", 3),
        ("connect", -6011, "DatabaseUnreachable", 3),
        ("connect", -200, "LoginFailed", 3),
        ("connect", -2503, "LoginFailed", 3),
        ("execute", -70019, "ConnectionLost", 3),
        ("execute", -6010, "ConnectionLost", 3),
        ("execute", -6108, "ValueTooLong", 2),
        ("execute", -6169, "ValueTooLong", 2),
        ("execute", -6602, "IntegrityViolation", 6),
        ("execute", -6604, "IntegrityViolation", 6),
        ("execute", -6612, "IntegrityViolation", 6),
        ("execute", -2106, "SchemaMissing", 3),
        ("execute", -6403, "DatabaseUnavailable", 3),
    ],
)
async def test_dm_error_codes_map_to_dmitems_errors(
    double: Any, operation: str, code: int, error_name: str, exit_code: int
) -> None:
    from sqlalchemy import text

    from dmitems import errors
    from dmitems.db import Database

    database = Database(dm_settings(database_pool_size=1))
    try:
        await database.warm_up(1) if operation == "execute" else None
        double.fail_next(operation, code, f"simulated failure {code} for {PASSWORD}")
        with pytest.raises(errors.DmitemsError) as caught:
            async with database.connect() as connection:
                await connection.execute(text("SELECT 1 FROM DUAL"))
    finally:
        await database.dispose()
    assert type(caught.value).__name__ == error_name
    assert caught.value.exit_code == exit_code
    assert PASSWORD not in caught.value.message
    if error_name != "SchemaMissing":  # that one names the fix instead of the code
        assert str(code) in caught.value.message


@pytest.mark.parametrize(("code", "dropped"), [(-70019, True), (-70028, True), (-6403, False)])
async def test_a_disconnect_invalidates_the_connection_and_a_busy_error_keeps_it(
    double: Any, code: int, dropped: bool
) -> None:
    from sqlalchemy import text

    from dmitems import errors
    from dmitems.db import Database

    database = Database(dm_settings(database_pool_size=1))
    try:
        await database.warm_up(1)
        double.calls.clear()
        double.fail_next("execute", code, f"simulated failure {code}")
        with pytest.raises(errors.DmitemsError):
            async with database.connect() as connection:
                await connection.execute(text("SELECT 1 FROM DUAL"))
        assert bool(calls_named(double, "close")) is dropped
        async with database.connect() as connection:  # the pool is usable afterwards
            assert (await connection.execute(text("SELECT 1 FROM DUAL"))).scalar() == 1
    finally:
        await database.dispose()
    assert len(calls_named(double, "connect")) == (1 if dropped else 0)


def test_value_too_long_message_quotes_the_byte_limits() -> None:
    from dmitems.db.dm import DMBackend

    class FakeDmError:  # the shape of dmPython's exc.args[0]
        code = -6108
        message = "[CODE:-6108]String truncated"

    mapped = DMBackend().classify(Exception(FakeDmError()), "dm://x")
    assert mapped is not None
    assert "255 bytes" in mapped.message and "500 bytes" in mapped.message
    assert "[CODE:" not in mapped.message
