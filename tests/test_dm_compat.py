"""The DM compatibility layer, over the dmPython DRIVER DOUBLE (no DM server can run here).

The real dmAsync and dmSQLAlchemy run unmodified on top of the double; only the
C driver is replaced.  See tests/dm_driver_double/dmPython.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli_runner import invoke
from tests.dm_driver_double import LoopLagMonitor, installed

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
    assert {"connect", "execute", "commit"} <= names
    on_loop = [(call.name, call.statement) for call in double.calls if call.on_loop_thread]
    assert on_loop == []
    loop_thread = threading.main_thread().name
    assert all(call.thread != loop_thread for call in calls_named(double, "connect", "execute"))


async def test_setup_queries_run_in_the_login_thread(double: Any) -> None:
    from dmitems.db import Database
    from dmitems.db.dm_compat import SETUP_QUERIES

    database = Database(dm_settings(database_pool_size=1))
    try:
        await database.warm_up(1)
    finally:
        await database.dispose()
    login = calls_named(double, "connect")[0]
    setup = [call for call in double.calls if call.statement in SETUP_QUERIES]
    assert [call.statement for call in setup] == list(SETUP_QUERIES)
    assert {call.thread for call in setup} == {login.thread}


async def test_thirty_concurrent_connects_never_stall_the_loop(double: Any) -> None:
    from dmitems.db import Database

    double.configure(login_latency=0.2, latency=0.002)
    # Two shared cores: an idle loop alone sometimes sees 10-15 ms of scheduler
    # noise, so the best of three trials is judged.  Upstream, every trial would
    # hold the loop for 30 x 200 ms of logins.
    worst = []
    for _ in range(3):
        double.calls.clear()
        database = Database(dm_settings(database_pool_size=30))
        try:
            await database.async_engine()
            async with LoopLagMonitor() as monitor:
                await database.warm_up(30)
        finally:
            await database.dispose()
        logins = calls_named(double, "connect")
        assert len(logins) == 30
        assert all(not call.on_loop_thread for call in logins)
        worst.append(monitor.worst)
        if monitor.worst < 0.05:
            break
    assert min(worst) < 0.05, f"loop stalled {[round(w * 1000) for w in worst]} ms"


async def test_executor_is_sized_from_the_pool(double: Any) -> None:
    from dmitems.db import Database
    from dmitems.db.dm_compat import default_executor_size, executor_threads

    settings = dm_settings(database_pool_size=30, database_max_overflow=10)
    assert executor_threads(settings) >= 40
    database = Database(settings)
    try:
        await database.async_engine()
        assert default_executor_size(asyncio.get_running_loop()) == executor_threads(settings)
    finally:
        await database.dispose()


async def test_executor_setting_overrides_and_a_bigger_executor_is_kept(double: Any) -> None:
    from dmitems.db.dm_compat import default_executor_size, size_executor

    loop = asyncio.get_running_loop()
    assert size_executor(dm_settings(dm_executor_threads=12)) == 12
    assert default_executor_size(loop) == 12
    big = concurrent.futures.ThreadPoolExecutor(max_workers=200)
    loop.set_default_executor(big)
    assert size_executor(dm_settings(database_pool_size=30)) == 200
    assert loop._default_executor is big  # type: ignore[attr-defined]


async def test_pre_ping_reaches_the_driver(double: Any) -> None:
    from sqlalchemy import text

    from dmitems.db import Database

    database = Database(dm_settings(database_pool_size=1, database_pool_pre_ping=True))
    try:
        for _ in range(2):
            async with database.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await database.dispose()
    pings = [call for call in double.calls if call.statement == "SELECT 1 FROM DUAL"]
    assert pings, "pre-ping never reached the driver"
    assert all(not call.on_loop_thread for call in pings)


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


@pytest.mark.parametrize(
    ("operation", "code", "error_name", "exit_code"),
    [
        ("connect", -70028, "DatabaseUnreachable", 3),
        ("connect", -6011, "DatabaseUnreachable", 3),
        ("connect", -200, "LoginFailed", 3),
        ("connect", -2503, "LoginFailed", 3),
        ("connect", -2508, "LoginFailed", 3),
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


def test_value_too_long_message_quotes_the_byte_limits() -> None:
    from dmitems.db.dm import DMBackend

    class FakeDmError:  # the shape of dmPython's exc.args[0]
        code = -6108
        message = "[CODE:-6108]String truncated"

    mapped = DMBackend().classify(Exception(FakeDmError()), "dm://x")
    assert mapped is not None
    assert "255 bytes" in mapped.message and "500 bytes" in mapped.message
    assert "[CODE:" not in mapped.message


def test_cli_crud_over_the_double(double: Any) -> None:
    def cli(*args: str) -> Any:
        return invoke("--url", DM_URL, *args)

    assert cli("init-db").exit_code == 0
    added = cli("item", "add", "--name", "机械键盘", "--price", "199", "--json")
    assert added.exit_code == 0, added.output
    item = added.json()
    assert item["name"] == "机械键盘" and item["version"] == 1
    listed = cli("item", "list", "--json")
    assert listed.exit_code == 0 and [i["id"] for i in listed.json()["items"]] == [item["id"]]
    updated = cli("item", "update", str(item["id"]), "--price", "179", "--expect-version", "1",
                  "--json")
    assert updated.exit_code == 0, updated.output
    assert updated.json()["price"] == 179 and updated.json()["version"] == 2
    stale = cli("item", "update", str(item["id"]), "--price", "1", "--expect-version", "1")
    assert stale.exit_code == 5
    assert cli("item", "delete", str(item["id"]), "--yes").exit_code == 0
    missing = cli("item", "get", str(item["id"]))
    assert missing.exit_code == 4 and missing.stderr.count("\n") == 1
    assert all(not call.on_loop_thread for call in double.calls)
    assert PASSWORD not in "".join(c.output for c in (added, listed, updated, stale, missing))


def test_cli_login_failure_is_one_line_exit_3(double: Any) -> None:
    double.configure(refuse_logins=double.dm_error(-200, "Invalid username or password"))
    result = invoke("--url", DM_URL, "item", "list")
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1 and "login failed" in result.stderr
    assert PASSWORD not in result.output


def test_init_db_sizes_strings_in_bytes_when_length_in_char_is_0(double: Any) -> None:
    double.configure(length_in_char=0)
    result = invoke("--url", DM_URL, "init-db", "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["length_in_char"] == 0
    ddl = next(c.statement for c in double.calls if (c.statement or "").startswith("\nCREATE TABLE items"))
    assert "VARCHAR2(1020)" in ddl and "VARCHAR2(2000)" in ddl
    name = "键" * 255  # 765 bytes in UTF-8: fits a 1020-byte column
    added = invoke("--url", DM_URL, "item", "add", "--name", name, "--price", "1", "--json")
    assert added.exit_code == 0 and added.json()["name"] == name


def test_init_db_keeps_char_semantics_when_length_in_char_is_1(double: Any) -> None:
    result = invoke("--url", DM_URL, "init-db", "--json")
    assert result.exit_code == 0 and result.json()["length_in_char"] == 1
    ddl = next(c.statement for c in double.calls if (c.statement or "").startswith("\nCREATE TABLE items"))
    assert "VARCHAR2(255 CHAR)" in ddl


def test_report_names_each_defect_and_apply_patches_them(double: Any) -> None:
    from dmitems.db import dm_compat

    before = {d.key: d for d in dm_compat.report()}
    assert before["slots-shadowing"].status == "present"
    assert before["blocking-connect"].status == "present"
    assert dm_compat.apply()
    after = {d.key: d for d in dm_compat.report()}
    for key in ("slots-shadowing", "blocking-connect", "fetch-on-loop", "dead-pre-ping",
                "executemany-returning", "executemany-appends-returning"):
        assert after[key].present is True and after[key].status == "patched", key
    assert not [d.key for d in after.values() if d.status == "present"]
    assert dm_compat.apply() == []  # idempotent
