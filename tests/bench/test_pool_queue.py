"""Both modes wait for a pooled connection in the same kind of line (``pool_queue``)."""

from __future__ import annotations

import threading
import time

import pytest

from dmitems.config import load_settings
from dmitems.db import Database
from dmitems.db.slots import NO_LINE, SyncSlots
from dmitems.errors import DatabaseUnavailable
from tests.bench.helpers import bench, validate


def _wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.001)


def test_sync_slots_hand_a_freed_slot_to_the_oldest_waiter() -> None:
    slots = SyncSlots(1)
    slots.take(1)
    granted: list[int] = []

    def wait(number: int) -> None:
        slots.take(5)
        granted.append(number)

    threads = []
    for number in range(5):  # they join the line in this order
        thread = threading.Thread(target=wait, args=(number,))
        thread.start()
        threads.append(thread)
        _wait_until(lambda: slots.waiting == number + 1)
    for expected in range(5):
        slots.give()
        _wait_until(lambda: len(granted) == expected + 1)
        assert slots.free == 0  # the slot went to a waiter, not back to the pile
    slots.give()
    for thread in threads:
        thread.join()
    assert granted == [0, 1, 2, 3, 4]
    assert (slots.free, slots.waiting) == (1, 0)
    slots.take(0)  # nobody waiting: a free slot is taken without a wait


def test_sync_slots_time_out_and_leave_the_line() -> None:
    slots = SyncSlots(1)
    slots.take(1)
    with pytest.raises(TimeoutError):
        slots.take(0.05)
    assert slots.waiting == 0
    slots.give()
    assert slots.free == 1


def _database(tmp_path, queue: str) -> Database:
    url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    return Database(load_settings(flags={
        "database_url": url, "database_pool_size": 1, "database_pool_timeout": 0.3,
        "database_pool_queue": queue,
    }))


def test_sync_connections_wait_in_dmitems_line_and_time_out_as_the_pool_would(tmp_path) -> None:
    database = _database(tmp_path, "fifo")
    try:
        with database.sync_connect():
            done = threading.Event()
            errors: list[BaseException] = []

            def second() -> None:
                try:
                    with database.sync_begin():
                        pass
                except BaseException as exc:
                    errors.append(exc)
                done.set()

            thread = threading.Thread(target=second)
            thread.start()
            _wait_until(lambda: database._sync_slots.waiting == 1)
            thread.join()
        assert isinstance(errors[0], DatabaseUnavailable)
        assert "no free database connection within 0.3 s" in errors[0].message
        with database.sync_connect():  # the slot came back
            pass
    finally:
        database.sync_dispose()


def test_native_queue_leaves_both_modes_to_the_pool(tmp_path) -> None:
    import asyncio

    database = _database(tmp_path, "native")
    try:
        with database.sync_connect():
            assert database._sync_slots is NO_LINE

        async def take() -> object:
            await database.async_engine()
            return await database._take_slot()

        assert asyncio.run(take()) is NO_LINE
    finally:
        asyncio.run(database.dispose())


@pytest.mark.parametrize("queue", ["fifo", "native"])
def test_the_choice_is_printed_and_recorded(tmp_path, queue) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    outcome, document = bench(
        url, "--concurrency", "4", "--duration", "0.3s", "--warmup", "0", "--quiet",
        "--pool-queue", queue, json_file=tmp_path / "out.json",
    )
    assert outcome.exit_code == 0, outcome.output
    validate(document)
    assert document["environment"]["database"]["pool_queue"] == queue
    assert f"pool_queue {queue}" in outcome.stdout
