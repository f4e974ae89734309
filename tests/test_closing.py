"""dmitems.db.closing: close inline when closing does not wait, else to completion in a task.

The first tests drive the helper with a connection-shaped object whose close()
either finishes at once or waits, to pin down the contract; the last ones use
real connections (SQLite file and PostgreSQL).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dmitems.db import closing


class Closable:
    """Has the one method closing.close() uses: an async ``close()``."""

    def __init__(self, wait: float = 0.0, fail: bool = False) -> None:
        self.wait = wait
        self.fail = fail
        self.closed = False

    async def close(self) -> None:
        if self.wait:
            await asyncio.sleep(self.wait)
        if self.fail:
            raise RuntimeError("close failed")
        self.closed = True


async def test_a_close_that_does_not_wait_needs_no_task(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_task(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a task was created for a close that does not wait")

    monkeypatch.setattr(asyncio, "ensure_future", no_task)
    connection = Closable()
    await closing.close(connection)  # type: ignore[arg-type]
    assert connection.closed


async def test_a_close_that_waits_finishes_even_if_the_caller_is_cancelled() -> None:
    connection = Closable(wait=0.1)
    task = asyncio.create_task(closing.close(connection))  # type: ignore[arg-type]
    await asyncio.sleep(0.02)  # the close is waiting now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert connection.closed  # the cancellation was raised only once the close was done


@pytest.mark.parametrize("wait", [0.0, 0.01])
async def test_a_failing_close_raises_its_error(wait: float) -> None:
    with pytest.raises(RuntimeError, match="close failed"):
        await closing.close(Closable(wait=wait, fail=True))  # type: ignore[arg-type]


async def test_real_connections_go_back_to_the_pool(database: Any) -> None:
    from sqlalchemy import text

    engine = await database.async_engine()
    pool = engine.sync_engine.pool
    async with database.connect() as connection:
        await connection.execute(text("SELECT 1"))  # a transaction to roll back on close
        assert pool.checkedout() == 1
    assert pool.checkedout() == 0
    async with database.connect() as connection:  # nothing to roll back
        assert pool.checkedout() == 1
    assert pool.checkedout() == 0
