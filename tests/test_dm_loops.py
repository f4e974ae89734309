"""Executor sizing in the loops dmitems owns, and the DM defect catalogue (driver double)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dm_driver_double import installed

DM_URL = "dm+dmAsync://SYSDBA:Loops_pw2@127.0.0.1:5236"


@pytest.fixture
def double() -> Iterator[Any]:
    with installed() as module:
        yield module


def dm_settings(**flags: Any) -> Any:
    from dmitems.config import load_settings

    return load_settings(flags={"database_url": DM_URL, **flags})


def test_executor_threads_follow_the_pool_or_the_setting() -> None:
    from dmitems.db.loops import executor_threads

    assert executor_threads(dm_settings(database_pool_size=30, database_max_overflow=10)) == 50
    assert executor_threads(dm_settings(database_pool_size=8, database_max_overflow=0)) == 12
    assert executor_threads(dm_settings(dm_executor_threads=3)) == 3


async def test_an_owned_loop_gets_an_executor_sized_from_the_pool(double: Any) -> None:
    from dmitems.db import Database, loops

    settings = dm_settings(database_pool_size=8, database_max_overflow=0)
    loop = asyncio.get_running_loop()
    loops.own()
    database = Database(settings)
    try:
        await database.warm_up(1)
        assert loops.sized_threads(loop) == 12
        # Twelve calls can wait on each other at once: the executor really has 12 threads.
        barrier = threading.Barrier(12)
        await asyncio.gather(*(asyncio.to_thread(barrier.wait, 10) for _ in range(12)))
    finally:
        await database.dispose()
    assert {call.thread.rpartition("_")[0] for call in double.calls} == {"dmitems-db"}


async def test_a_bigger_pool_in_the_same_owned_loop_gets_a_bigger_executor(double: Any) -> None:
    from dmitems.db import loops

    loop = asyncio.get_running_loop()
    loops.own()
    assert loops.size_executor(dm_settings(dm_executor_threads=4)) == 4
    assert loops.size_executor(dm_settings(dm_executor_threads=2)) == 4  # kept: big enough
    assert loops.size_executor(dm_settings(dm_executor_threads=9)) == 9
    assert loops.sized_threads(loop) == 9


async def test_a_loop_dmitems_does_not_own_keeps_its_owners_executor(double: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from dmitems.db import Database, loops

    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="application")
    loop.set_default_executor(executor)
    database = Database(dm_settings(database_pool_size=2))
    try:
        await database.warm_up(2)
    finally:
        await database.dispose()
    assert loops.sized_threads(loop) is None
    assert {call.thread.rpartition("_")[0] for call in double.calls} == {"application"}


def test_the_catalogue_is_complete_plain_data() -> None:
    from dmitems.db.dm_defects import DEFECTS, OVERRIDDEN, STEERED_CLEAR

    keys = [defect.key for defect in DEFECTS]
    assert len(keys) == len(set(keys))
    assert OVERRIDDEN | STEERED_CLEAR <= set(keys)
    for defect in DEFECTS:
        assert defect.title and defect.symptom and defect.remedy and defect.user_action
        assert defect.status == "absent" and defect.present is None  # data, no state
    executor = next(defect for defect in DEFECTS if defect.key == "small-executor")
    assert "set_default_executor" in executor.user_action


def test_report_finds_each_overridden_defect_in_the_installed_packages(double: Any) -> None:
    from dmitems.db import dm_defects

    report = {defect.key: defect for defect in dm_defects.report()}
    assert set(report) == {defect.key for defect in dm_defects.DEFECTS}
    for key in dm_defects.OVERRIDDEN:
        assert report[key].present is True and report[key].status == "fixed", key
    assert not [key for key, defect in report.items() if defect.status == "present"]
    assert report["small-executor"].status == "advice"
    assert "own event loop" in report["small-executor"].detail


@pytest.mark.filterwarnings("ignore:.*httpx2.*")
@pytest.mark.parametrize(("owns_loop", "threads"), [(True, "dmitems-db"), (False, "asyncio")])
def test_only_dmitems_serve_sizes_the_apps_loop(double: Any, owns_loop: bool, threads: str) -> None:
    """``dmitems serve`` builds its app with owns_loop=True; an embedding application does not."""
    from fastapi.testclient import TestClient

    from dmitems.api import create_app
    from dmitems.db import Database
    from dmitems.db.schema import create_schema

    settings = dm_settings(server_mode="async", database_pool_size=2)

    async def schema() -> None:
        database = Database(settings)
        try:
            await create_schema(database)
        finally:
            await database.dispose()

    asyncio.run(schema())
    with TestClient(create_app(settings, owns_loop=owns_loop)) as client:
        double.calls.clear()
        created = client.post("/items", json={"name": "机械键盘", "price": 199})
        assert created.status_code == 201, created.text
    names = {call.thread.rpartition("_")[0] for call in double.calls if call.name == "execute"}
    assert names == {threads}
