"""Where the time goes: pool activity, event-loop lag, the generator's own CPU.

* :class:`PoolGauge` listens to SQLAlchemy pool events (``connect``,
  ``checkout``, ``checkin``): connections opened during the window (a warm
  pool opens none), checkouts, and the most connections in use at once.  The
  per-request split between waiting for a connection and using it is timed
  by the targets and recorded by the recorder.
* :class:`LoopLag` samples how late the event loop wakes a sleeping task;
  lag means something blocked the loop (a sync call, a busy CPU).
* :class:`CpuMeter` reports the benchmark process's CPU use as a share of
  one core; near 100 % the generator itself may be the bottleneck.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

from dmitems.bench.recorder import histogram_stats, new_histogram, to_us

if TYPE_CHECKING:
    from sqlalchemy.pool import Pool


class PoolGauge:
    """Counts pool events on one SQLAlchemy pool while attached."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.opened = 0
        self.checkouts = 0
        self.in_use = 0
        self.peak_in_use = 0
        self.listening = False

    def _connect(self, *_: Any) -> None:
        self.opened += 1

    def _checkout(self, *_: Any) -> None:
        self.checkouts += 1
        self.in_use += 1
        self.peak_in_use = max(self.peak_in_use, self.in_use)

    def _checkin(self, *_: Any) -> None:
        self.in_use = max(0, self.in_use - 1)

    def attach(self) -> PoolGauge:
        from sqlalchemy import event

        event.listen(self.pool, "connect", self._connect)
        event.listen(self.pool, "checkout", self._checkout)
        event.listen(self.pool, "checkin", self._checkin)
        self.listening = True
        return self

    def detach(self) -> None:
        from sqlalchemy import event

        if self.listening:
            event.remove(self.pool, "connect", self._connect)
            event.remove(self.pool, "checkout", self._checkout)
            event.remove(self.pool, "checkin", self._checkin)
            self.listening = False

    def report(self) -> dict[str, int]:
        return {
            "connections_opened": self.opened,
            "checkouts": self.checkouts,
            "peak_in_use": self.peak_in_use,
        }


class LoopLag:
    """Samples event-loop lag every ``interval`` seconds while running."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.histogram = new_histogram()
        self.task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.histogram.record_value(to_us(time.perf_counter() - before - self.interval))

    def start(self) -> LoopLag:
        self.task = asyncio.get_running_loop().create_task(self._sample())
        return self

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            self.task = None

    def report(self) -> dict[str, float | None]:
        stats = histogram_stats(self.histogram)
        return {
            "samples": self.histogram.get_total_count(),
            "p50_ms": stats["p50_ms"],
            "p99_ms": stats["p99_ms"],
            "max_ms": stats["max_ms"],
        }


class CpuMeter:
    """This process's CPU time over wall time, as a share of one core."""

    def __init__(self) -> None:
        self.cpu = time.process_time()
        self.wall = time.perf_counter()

    def share(self) -> float:
        wall = time.perf_counter() - self.wall
        return (time.process_time() - self.cpu) / wall if wall > 0 else 0.0


def executor_threads(loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    """The size of the loop's default executor (what ``asyncio.to_thread`` uses): the one
    dmitems installed (:mod:`dmitems.db.loops`), else asyncio's default size."""
    from dmitems.db.loops import sized_threads

    default = min(32, (os.cpu_count() or 1) + 4)
    size = sized_threads(loop)
    return {"threads": size or default, "configured": size is not None, "default": default}


def loop_implementation(loop: asyncio.AbstractEventLoop) -> str:
    cls = type(loop)
    return f"{cls.__module__}.{cls.__qualname__}"
