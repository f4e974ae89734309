"""``--processes N``: one run split over N load processes, their recordings merged.

Each process gets its share of the workers, the rate and the pool, so the
totals match a single-process run; they start measuring together (a barrier).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, replace
from typing import Any

from dmitems.bench.spec import RunPlan
from dmitems.errors import DatabaseUnavailable


@dataclass
class Shard:
    """This process's share of a run split over several processes."""

    index: int
    count: int
    barrier: Any = None

    def share(self, total: int) -> int:
        return total // self.count + (1 if self.index < total % self.count else 0)


def _child(payload: dict[str, Any], barrier: Any, outbox: Any) -> None:
    """Entry point of one load process: run its share and send back the recording."""
    from dmitems.bench.runner import Silent, measure
    from dmitems.bench.targets import BenchRows
    from dmitems.db.loops import owned

    shard = Shard(payload["index"], payload["count"], barrier)
    try:
        rows = BenchRows(payload["prefix"])
        outcome = asyncio.run(
            owned(  # a load process's loop is dmitems' own: its executor is sized
                measure(
                    payload["context"], payload["plan"], payload["concurrency"],
                    payload["rate"], rows, Silent(), shard,
                )
            )
        )
        outbox.put((shard.index, outcome, None))
    except BaseException as exc:  # reported by the parent as one line
        barrier.abort()
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        code = getattr(exc, "exit_code", 1)
        outbox.put((shard.index, None, (str(message)[:300], code)))


def _start(context: Any, plan: RunPlan, prefix: str, barrier: Any, outbox: Any) -> list[Any]:
    spawn = _spawn()
    count = context.spec.processes
    rate = context.spec.rate
    # Settings travel pickled, their provenance (sources) included.
    shard_settings = context.settings.model_copy(
        update={"database_pool_size": math.ceil(plan.pool_size / count)}
    )
    shard_context = replace(context, settings=shard_settings)
    processes = []
    for index in range(count):
        payload = {
            "index": index,
            "count": count,
            "context": shard_context,
            "plan": replace(plan, pool_size=shard_settings.database_pool_size),
            "concurrency": Shard(index, count).share(plan.concurrency),
            "rate": rate / count if rate else None,
            "prefix": f"{prefix}p{index}-",
        }
        process = spawn.Process(target=_child, args=(payload, barrier, outbox), daemon=True)
        process.start()
        processes.append(process)
    return processes


def _spawn() -> Any:
    import multiprocessing

    return multiprocessing.get_context("spawn")


async def _collect(outbox: Any, processes: list[Any], count: int) -> list[dict[str, Any]]:
    outcomes: dict[int, dict[str, Any]] = {}
    failure: tuple[str, int] | None = None
    while len(outcomes) < count and failure is None:
        try:
            index, outcome, error = await asyncio.to_thread(outbox.get, True, 1.0)
        except Exception:  # queue.Empty: check nobody died silently
            if any(not p.is_alive() for p in processes) and outbox.empty():
                failure = ("a load process ended without a result", 1)
            continue
        if error is not None:
            failure = error
        else:
            outcomes[index] = outcome
    if failure is not None:
        error = DatabaseUnavailable(failure[0])
        error.exit_code = failure[1]
        raise error
    return [outcomes[index] for index in sorted(outcomes)]


async def measure_in_processes(
    context: Any, plan: RunPlan, prefix: str, observer: Any
) -> list[dict[str, Any]]:
    """Run ``plan`` in ``--processes`` processes; their outcomes, in process order."""
    count = context.spec.processes
    spawn = _spawn()
    barrier = spawn.Barrier(count)
    outbox = spawn.Queue()
    processes = _start(context, plan, prefix, barrier, outbox)
    observer.run_started(plan, f"measure ({count} processes)", None)
    try:
        return await _collect(outbox, processes, count)
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
