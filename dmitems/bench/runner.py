"""Running the benchmark: each planned run through setup, warm-up, measurement and clean-up.

A run is self-contained: it opens its own pool (timed, reported apart as
connection time), creates its own rows, warms up (discarded), then measures.
With ``--processes N`` the run is split across N processes that start
measuring together (a barrier) and whose histograms are merged.

Rows: every row the benchmark creates is named ``dmitems-bench-<run id>-…``
and is removed at the end (one ``DELETE … WHERE name LIKE prefix%``), unless
``--keep``.  Against a server given by ``--url`` (whose database the
benchmark may not reach) the rows it knows of are deleted over HTTP.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dmitems.bench import load, results
from dmitems.bench.instruments import CpuMeter, LoopLag, PoolGauge, executor_threads
from dmitems.bench.recorder import Recorder, encode_histogram, histogram_stats
from dmitems.bench.spec import BenchSpec, RunPlan
from dmitems.bench.targets import (
    AsyncDatabaseTarget,
    BenchRows,
    HttpTarget,
    HttpxTarget,
    SyncDatabaseTarget,
)
from dmitems.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from dmitems.config import Settings

ROW_PREFIX = "dmitems-bench-"
CPU_BOUND_SHARE = 0.9
LOOP_LAG_WARN_MS = 20.0


class Observer(Protocol):
    """What the runner tells the outside world (the CLI's live view) while it works."""

    def note(self, text: str) -> None: ...

    def run_started(self, plan: RunPlan, phase: str, recorder: Recorder | None) -> None: ...

    def run_finished(self, plan: RunPlan, run: dict[str, Any]) -> None: ...


class Silent:
    def note(self, text: str) -> None:
        pass

    def run_started(self, plan: RunPlan, phase: str, recorder: Recorder | None) -> None:
        pass

    def run_finished(self, plan: RunPlan, run: dict[str, Any]) -> None:
        pass


@dataclass
class Shard:
    """This process's share of a run split over several processes."""

    index: int
    count: int
    barrier: Any = None


@dataclass
class RunContext:
    spec: BenchSpec
    settings: Settings
    prefix: str
    urls: dict[str, str] = field(default_factory=dict)  # mode -> server URL (HTTP target)
    cleanup_over_http: bool = False


def seed_sizes(concurrency: int) -> tuple[int, int]:
    """(rows to seed, how many of them may be deleted): enough that requests rarely collide."""
    stable = min(500, max(50, 2 * concurrency))
    return stable + concurrency, concurrency


def _api_key(settings: Settings) -> str | None:
    return settings.api_key.get_secret_value() if settings.api_key is not None else None


def make_target(context: RunContext, mode: str, rows: BenchRows, concurrency: int) -> Any:
    spec, settings = context.spec, context.settings
    if spec.target == "db":
        from dmitems.db import Database

        database = Database(settings)
        return (SyncDatabaseTarget if mode == "sync" else AsyncDatabaseTarget)(database, rows)
    url = context.urls[mode]
    if spec.client == "sequential":
        return HttpxTarget(mode, url, rows, spec.request_timeout, _api_key(settings))
    return HttpTarget(mode, url, rows, concurrency, spec.request_timeout, _api_key(settings))


def _seeder(context: RunContext, mode: str, target: Any, rows: BenchRows) -> Any:
    if isinstance(target, HttpxTarget):  # seed and clean up with aiohttp, not the article's client
        return HttpTarget(
            mode, context.urls[mode], rows, 16, context.spec.request_timeout,
            _api_key(context.settings),
        )
    return None


def runs_on_threads(target: Any) -> bool:
    return isinstance(target, SyncDatabaseTarget) or (
        isinstance(target, HttpxTarget) and target.mode == "sequential"
    )


async def drive(
    target: Any, spec: BenchSpec, concurrency: int, rate: float | None, budget: load.Budget,
    recorder: Recorder,
) -> None:
    mix = load.Mix(spec.mix)
    schedule = load.arrivals(rate, spec.arrival) if rate else None
    tolerance = load.late_after(rate) if rate else None
    drain = spec.request_timeout + 5
    if runs_on_threads(target):
        call = target.call_sync if isinstance(target, HttpxTarget) else target.call
        workers = 1 if isinstance(target, HttpxTarget) else concurrency
        await asyncio.to_thread(
            load.run_threads, call, mix, recorder, budget, workers, schedule, tolerance, drain
        )
    else:
        await load.run_tasks(
            target.call, mix, recorder, budget, concurrency, schedule, tolerance, drain
        )


async def measure(
    context: RunContext,
    plan: RunPlan,
    concurrency: int,
    rate: float | None,
    rows: BenchRows,
    observer: Observer,
    shard: Shard | None = None,
) -> dict[str, Any]:
    """Open, seed, warm up and measure one run (or this process's share of it)."""
    spec = context.spec
    target = make_target(context, plan.mode, rows, concurrency)
    seeder = _seeder(context, plan.mode, target, rows)
    gauge: PoolGauge | None = None
    try:
        connections = min(concurrency, context.settings.database_pool_size)
        connect_s = await target.open(connections)
        if seeder is not None:
            await seeder.open(16)
        if {"get", "update", "delete"} & set(spec.mix):
            await (seeder or target).seed(*seed_sizes(concurrency))
        if spec.warmup > 0:
            observer.run_started(plan, "warm-up", None)
            warm = Recorder(tuple(spec.mix))
            await drive(target, spec, concurrency, rate, load.Budget(spec.warmup, None), warm)
        if shard is not None and shard.barrier is not None:
            await asyncio.to_thread(shard.barrier.wait, 120)
        pool = await target.pool() if hasattr(target, "pool") else None
        gauge = PoolGauge(pool).attach() if pool is not None else None
        lag = LoopLag().start() if not runs_on_threads(target) else None
        recorder = Recorder(tuple(spec.mix))
        observer.run_started(plan, "measure", recorder if shard is None else None)
        cpu = CpuMeter()
        budget = load.Budget(spec.duration, spec.requests if shard is None else
                             _share(spec.requests, shard) if spec.requests else None)
        await drive(target, spec, concurrency, rate, budget, recorder)
        cpu_share = cpu.share()
        loop_lag = None
        if lag is not None:
            await lag.stop()
            loop_lag = lag.report()
        extras = {
            "connect_s": connect_s,
            "cpu_share": cpu_share,
            "loop_lag": loop_lag,
            "pool": gauge.report() if gauge is not None else None,
            # dmAsync runs driver calls on the loop's default executor; other async drivers don't.
            "executor": executor_threads(asyncio.get_running_loop())
            if plan.mode == "async" and _backend_name(target) == "dm" else None,
        }
        removed = 0
        if context.cleanup_over_http:
            removed = await (seeder or target).remove_remaining()
        return {
            "snapshot": recorder.snapshot(),
            "extras": extras,
            "rows": {**rows.report(), "removed": removed},
        }
    finally:
        if gauge is not None:
            gauge.detach()
        await target.close()
        if seeder is not None:
            await seeder.close()


def _backend_name(target: Any) -> str | None:
    database = getattr(target, "database", None)
    return database.backend.name if database is not None else None


def _share(total: int, shard: Shard) -> int:
    return total // shard.count + (1 if shard.index < total % shard.count else 0)


# -- several processes -----------------------------------------------------------


def _child(payload: dict[str, Any], barrier: Any, outbox: Any) -> None:
    """Entry point of one load process: run its share and send back the recording."""
    from dmitems.db.loops import owned

    shard = Shard(payload["index"], payload["count"], barrier)
    try:
        rows = BenchRows(payload["prefix"])
        outcome = asyncio.run(
            owned(  # a load process's loop is dmitems' own: its executor is sized
                measure(
                    payload["context"], payload["plan"], payload["concurrency"], payload["rate"],
                    rows, Silent(), shard,
                )
            )
        )
        outbox.put((shard.index, outcome, None))
    except BaseException as exc:  # reported by the parent as one line
        barrier.abort()
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        code = getattr(exc, "exit_code", 1)
        outbox.put((shard.index, None, (str(message)[:300], code)))


async def measure_in_processes(
    context: RunContext, plan: RunPlan, prefix: str, observer: Observer
) -> list[dict[str, Any]]:
    import multiprocessing

    spec = context.spec
    count = spec.processes
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(count)
    outbox = spawn.Queue()
    # Each process gets its share of the workers, the rate and the pool, so the totals match
    # a single-process run.
    shard_settings = context.settings.model_copy(
        update={"database_pool_size": math.ceil(context.settings.database_pool_size / count)}
    )
    shard_settings._sources = context.settings.sources
    shard_context = replace(context, settings=shard_settings)
    processes = []
    for index in range(count):
        shard = Shard(index, count)
        payload = {
            "index": index,
            "count": count,
            "context": shard_context,
            "plan": plan,
            "concurrency": _share(plan.concurrency, shard),
            "rate": spec.rate / count if spec.rate else None,
            "prefix": f"{prefix}p{index}-",
        }
        process = spawn.Process(target=_child, args=(payload, barrier, outbox), daemon=True)
        process.start()
        processes.append(process)
    observer.run_started(plan, f"measure ({count} processes)", None)
    outcomes: dict[int, dict[str, Any]] = {}
    failure: tuple[str, int] | None = None
    try:
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
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
    if failure is not None:
        error = DatabaseUnavailable(failure[0])
        error.exit_code = failure[1]
        raise error
    return [outcomes[index] for index in sorted(outcomes)]


# -- the whole benchmark -------------------------------------------------------------


def _run_record(
    plan: RunPlan, spec: BenchSpec, backend: str, started_at: str, outcomes: list[dict[str, Any]]
) -> dict[str, Any]:
    merged = Recorder(tuple(spec.mix))
    merged.finished = merged.started
    for outcome in outcomes:
        merged.absorb(outcome["snapshot"])
    extras = [outcome["extras"] for outcome in outcomes]
    first = extras[0]
    rows = {
        key: sum(outcome["rows"][key] for outcome in outcomes)
        for key in ("created", "deleted", "removed")
    }
    open_loop = spec.open_loop
    record: dict[str, Any] = {
        "mode": plan.mode,
        "concurrency": plan.concurrency,
        "repeat": plan.repeat,
        "index": plan.index,
        "processes": len(outcomes),
        "started_at": started_at,
        "duration_s": merged.elapsed,
        "connect_s": max(e["connect_s"] for e in extras),
        "total": merged.stats(),
        "operations": {name: merged.stats(name) for name in spec.mix},
        "late": merged.late if open_loop else None,
        "dropped": merged.dropped if open_loop else None,
        "skipped": merged.skipped,
        "breakdown": {
            "pool_wait": _phase(merged.pool_wait),
            "execution": _phase(merged.execution),
            "queue_wait": _phase(merged.queue_wait) if open_loop else None,
            "pool": _sum_dicts([e["pool"] for e in extras]),
            "loop_lag": first["loop_lag"],
            "executor": first["executor"],
            "cpu_share": max(e["cpu_share"] for e in extras),
            "threads": plan.concurrency if plan.mode == "sync" and spec.target == "db" else None,
        },
        "timeseries": merged.timeseries(),
        "histogram": encode_histogram(merged.total),
        "rows": rows,
    }
    record["warnings"] = run_warnings(record, spec, backend)
    return record


def _phase(histogram: Any) -> dict[str, Any] | None:
    if histogram.get_total_count() == 0:
        return None
    stats = histogram_stats(histogram)
    return {key: stats[key] for key in ("mean_ms", "p50_ms", "p99_ms", "max_ms")}


def _sum_dicts(parts: list[dict[str, int] | None]) -> dict[str, int] | None:
    present = [part for part in parts if part is not None]
    if not present:
        return None
    return {key: sum(part[key] for part in present) for key in present[0]}


def run_warnings(record: dict[str, Any], spec: BenchSpec, backend: str) -> list[str]:
    where = f"{record['mode']} at concurrency {record['concurrency']}"
    found = []
    share = record["breakdown"]["cpu_share"]
    if share >= CPU_BOUND_SHARE and record["processes"] == 1:
        if spec.target == "http":
            found.append(
                f"{where}: the load generator used {share:.0%} of a core and may be the "
                "bottleneck (try --processes 2)"
            )
        elif backend != "sqlite":  # SQLite runs inside the process: CPU-bound by nature
            found.append(
                f"{where}: the client process used {share:.0%} of a core; Python-side work "
                "(SQLAlchemy, the driver) limits this mode as much as the database does"
            )
    total = record["total"]["count"]
    if spec.open_loop and total:
        late, dropped = record["late"] or 0, record["dropped"] or 0
        if late > 0.01 * total or dropped:
            found.append(
                f"{where}: behind schedule at {spec.rate:g} req/s: {late} late, {dropped} dropped; "
                "the target (or the generator) cannot keep this rate"
            )
    if record["skipped"]:
        found.append(f"{where}: {record['skipped']} deletes found no bench row to delete (skipped)")
    lag = record["breakdown"]["loop_lag"]
    if lag and lag["p99_ms"] is not None and lag["p99_ms"] > LOOP_LAG_WARN_MS:
        if spec.target == "http":
            found.append(
                f"{where}: the load generator's event loop lagged {lag['p99_ms']:.1f} ms (p99): "
                "it is busy, and latencies include up to that much client delay "
                "(try --processes 2)"
            )
        else:
            found.append(
                f"{where}: event-loop lag p99 {lag['p99_ms']:.1f} ms: something blocks the loop "
                "or the process is short of CPU"
            )
    return found


async def _ensure_schema(settings: Settings, observer: Observer) -> None:
    from dmitems.db import Database
    from dmitems.db.schema import create_schema

    database = Database(settings)
    try:
        report = await create_schema(database)
    finally:
        await database.dispose()
    if report["created"]:
        observer.note(f"created the items table in {report['url']}")


async def _remove_rows(settings: Settings, prefix: str) -> int:
    from dmitems.db import Database
    from dmitems.repository import AsyncItems

    database = Database(settings)
    try:
        async with database.begin() as connection:
            return int(await AsyncItems(connection, database.backend).delete_named_like(prefix))
    finally:
        await database.dispose()


async def run_benchmark(
    spec: BenchSpec,
    settings: Settings,
    config_path: Path | None = None,
    observer: Observer | None = None,
) -> dict[str, Any]:
    """Run every planned run and return the result document (see result.schema.json)."""
    observer = observer or Silent()
    run_id = secrets.token_hex(4)
    prefix = f"{ROW_PREFIX}{run_id}-"
    context = RunContext(spec, settings, prefix)
    servers = []
    uses_database = spec.url is None
    document = results.new_document(spec, settings, run_id, prefix)
    failed = True
    try:
        if uses_database:
            await _ensure_schema(settings, observer)
        if spec.target == "http":
            if spec.url is not None:
                context.urls = {mode: spec.url for mode in spec.run_modes}
                context.cleanup_over_http = not spec.keep
            else:
                servers = await _start_servers(spec, settings, config_path, observer)
                context.urls = {mode: server.url for mode, server in servers}
        document["environment"]["servers"] = {
            mode: url for mode, url in context.urls.items()
        } or None
        for plan in spec.plan():
            started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            run_prefix = f"{prefix}{plan.index}-"
            rate = spec.rate
            if spec.processes > 1:
                outcomes = await measure_in_processes(context, plan, run_prefix, observer)
            else:
                rows = BenchRows(run_prefix)
                outcomes = [
                    await measure(context, plan, plan.concurrency, rate, rows, observer)
                ]
            backend = document["environment"]["database"]["backend"]
            record = _run_record(plan, spec, backend, started_at, outcomes)
            document["runs"].append(record)
            observer.run_finished(plan, record)
        failed = False
    finally:
        for _, server in servers:
            await asyncio.to_thread(server.stop)
        try:
            document["cleanup"] = await _cleanup(spec, settings, prefix, document, uses_database)
        except Exception:
            if not failed:
                raise  # otherwise the first error is the one worth reporting
    results.finish_document(document)
    return document


async def _start_servers(
    spec: BenchSpec, settings: Settings, config_path: Path | None, observer: Observer
) -> list[tuple[str, Any]]:
    from dmitems.bench.servers import ServeProcess

    modes = ("async",) if spec.client == "sequential" else spec.modes
    started: list[tuple[str, Any]] = []
    try:
        for mode in modes:
            observer.note(f"starting `dmitems serve --mode {mode}`")
            server = await asyncio.to_thread(ServeProcess(mode, settings, config_path).start)
            started.append((mode, server))
    except BaseException:
        for _, server in started:
            server.stop()
        raise
    if spec.client == "sequential":  # the article: both clients against the same async server
        return [("sequential", started[0][1]), ("concurrent", started[0][1])]
    return started


async def _cleanup(
    spec: BenchSpec, settings: Settings, prefix: str, document: dict[str, Any],
    uses_database: bool,
) -> dict[str, Any]:
    created = sum(run["rows"]["created"] for run in document["runs"])
    deleted = sum(run["rows"]["deleted"] for run in document["runs"])
    removed: int | None = None
    if uses_database and not spec.keep:
        removed = await _remove_rows(settings, prefix)
    elif not spec.keep:
        removed = sum(run["rows"]["removed"] for run in document["runs"])
    return {
        "prefix": prefix,
        "created": created,
        "deleted_during_run": deleted,
        "removed_at_end": removed,
        "kept": spec.keep,
        "method": "database" if uses_database else "http",
    }
