"""Load models: who sends the next request, and when.

* **Closed loop** (default): N workers, each sends its next request as soon as
  the previous one answers.  Throughput is what the target sustains at N.
* **Open loop** (``--rate R``): a scheduler fixes each request's *intended*
  send time in advance, evenly spaced (``constant``) or with exponential gaps
  (``poisson``); N workers take them in order.  Latency counts from the
  intended time, so a stalled target cannot hide its stall by slowing the
  generator (coordinated omission).  A request that starts more than
  ``late_after`` after its intended time is *late*; one still waiting when the
  window closes is *dropped*.

Both models run as asyncio tasks (async targets) or as OS threads (sync
targets) with the same logic.  A target's ``call(operation)`` returns the
(pool wait, execution) split in seconds, ``None``, or :data:`SKIPPED`.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import queue
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from dmitems.bench.recorder import Recorder

SKIPPED = object()
# Open loop: how far behind schedule a request may start before it counts as late.
LATE_FLOOR = 0.002

AsyncCall = Callable[[str], Awaitable[Any]]
SyncCall = Callable[[str], Any]


class Mix:
    """Picks operations at random in proportion to their weights."""

    def __init__(self, weights: dict[str, int], seed: int | None = None) -> None:
        self.names = list(weights)
        self.bounds = list(itertools.accumulate(weights.values()))
        self.random = random.Random(seed)

    def pick(self) -> str:
        return self.names[bisect.bisect_right(self.bounds, self.random.random() * self.bounds[-1])]


class Budget:
    """When the measured window closes: at a deadline, after N requests, or both."""

    def __init__(self, duration: float | None, requests: int | None) -> None:
        self.deadline = time.perf_counter() + duration if duration is not None else None
        self.remaining = requests
        self.lock = threading.Lock()

    def take(self, at: float | None = None) -> bool:
        """Claim one request starting at ``at`` (default now); False once the window is shut."""
        if self.deadline is not None and (at or time.perf_counter()) >= self.deadline:
            return False
        if self.remaining is None:
            return True
        with self.lock:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            return True

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline


def arrivals(rate: float, arrival: str, seed: int | None = None) -> Iterator[float]:
    """Intended send times, from now on, at ``rate`` per second."""
    rng = random.Random(seed)
    moment = time.perf_counter()
    while True:
        yield moment
        moment += rng.expovariate(rate) if arrival == "poisson" else 1.0 / rate


def late_after(rate: float) -> float:
    return max(LATE_FLOOR, 1.0 / rate)


def error_kind(exc: BaseException) -> str:
    kind = getattr(exc, "kind", None)
    return kind if isinstance(kind, str) else type(exc).__name__


def _settle(recorder: Recorder, operation: str, intended: float, outcome: Any) -> None:
    if outcome is SKIPPED:
        recorder.skip(operation)
    else:
        recorder.success(operation, intended, time.perf_counter(), outcome)


# -- async ---------------------------------------------------------------------


async def _attempt(call: AsyncCall, operation: str, intended: float, recorder: Recorder) -> None:
    try:
        outcome = await call(operation)
    except Exception as exc:
        recorder.failure(operation, error_kind(exc), time.perf_counter())
    else:
        _settle(recorder, operation, intended, outcome)


async def run_tasks(
    call: AsyncCall,
    mix: Mix,
    recorder: Recorder,
    budget: Budget,
    concurrency: int,
    schedule: Iterator[float] | None,
    tolerance: float | None,
    drain: float,
) -> None:
    """Drive an async target with ``concurrency`` tasks until the budget is spent."""

    async def closed_worker() -> None:
        while budget.take():
            operation = mix.pick()
            started = time.perf_counter()
            recorder.begin(operation, started, started, None)
            await _attempt(call, operation, started, recorder)

    backlog: asyncio.Queue[float | None] = asyncio.Queue()

    async def open_worker() -> None:
        while (intended := await backlog.get()) is not None:
            started = time.perf_counter()
            if budget.expired(started):
                recorder.drop()
                continue
            operation = mix.pick()
            recorder.begin(operation, intended, started, tolerance)
            await _attempt(call, operation, intended, recorder)

    async def scheduler(times: Iterator[float]) -> None:
        for intended in times:
            if not budget.take(intended):
                break
            delay = intended - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            backlog.put_nowait(intended)
        for _ in range(concurrency):
            backlog.put_nowait(None)

    worker = closed_worker if schedule is None else open_worker
    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    if schedule is not None:
        tasks.append(asyncio.create_task(scheduler(schedule)))
    await _finish(tasks, budget, drain)
    recorder.close()


async def _finish(tasks: list[asyncio.Task[None]], budget: Budget, drain: float) -> None:
    """Wait for the window to close, then at most ``drain`` seconds for stragglers."""
    pending = set(tasks)
    if budget.deadline is not None:
        _, pending = await asyncio.wait(
            pending, timeout=max(0.0, budget.deadline - time.perf_counter())
        )
    if pending and budget.deadline is not None:
        _, pending = await asyncio.wait(pending, timeout=drain)
    elif pending:
        _, pending = await asyncio.wait(pending)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)


# -- threads -------------------------------------------------------------------


def _attempt_sync(call: SyncCall, operation: str, intended: float, recorder: Recorder) -> None:
    try:
        outcome = call(operation)
    except Exception as exc:
        recorder.failure(operation, error_kind(exc), time.perf_counter())
    else:
        _settle(recorder, operation, intended, outcome)


def run_threads(
    call: SyncCall,
    mix: Mix,
    recorder: Recorder,
    budget: Budget,
    concurrency: int,
    schedule: Iterator[float] | None,
    tolerance: float | None,
    drain: float,
) -> None:
    """Drive a sync target with ``concurrency`` OS threads until the budget is spent."""
    lock = threading.Lock()  # Mix's Random is not safe to share between threads
    backlog: queue.Queue[float | None] = queue.Queue()

    def pick() -> str:
        with lock:
            return mix.pick()

    def closed_worker() -> None:
        while budget.take():
            operation = pick()
            started = time.perf_counter()
            recorder.begin(operation, started, started, None)
            _attempt_sync(call, operation, started, recorder)

    def open_worker() -> None:
        while (intended := backlog.get()) is not None:
            started = time.perf_counter()
            if budget.expired(started):
                recorder.drop()
                continue
            operation = pick()
            recorder.begin(operation, intended, started, tolerance)
            _attempt_sync(call, operation, intended, recorder)

    worker = closed_worker if schedule is None else open_worker
    threads = [
        threading.Thread(target=worker, name=f"dmitems-bench-{n}", daemon=True)
        for n in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    if schedule is not None:
        _schedule_threads(schedule, budget, backlog, len(threads))
    _join(threads, budget, drain)
    recorder.close()


def _schedule_threads(
    schedule: Iterator[float], budget: Budget, backlog: queue.Queue[float | None], workers: int
) -> None:
    """Open loop: hand each intended send time to the workers when it comes, then stop them."""
    for intended in schedule:
        if not budget.take(intended):
            break
        delay = intended - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        backlog.put(intended)
    for _ in range(workers):
        backlog.put(None)


def _join(threads: list[threading.Thread], budget: Budget, drain: float) -> None:
    """Wait for the workers; after the window, at most ``drain`` seconds more.

    Threads cannot be cancelled: any still running are abandoned (they are daemons)
    and their requests are counted as unfinished.
    """
    if budget.deadline is not None:
        limit = budget.deadline + drain
        for thread in threads:
            thread.join(timeout=max(0.0, limit - time.perf_counter()))
    else:
        for thread in threads:
            thread.join()
