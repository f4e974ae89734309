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
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dmitems.bench import load, results
from dmitems.bench.http_targets import HttpTarget, HttpxTarget
from dmitems.bench.instruments import CpuMeter, LoopLag, PoolGauge, executor_threads
from dmitems.bench.records import run_record
from dmitems.bench.recorder import Recorder
from dmitems.bench.spec import BenchSpec, RunPlan
from dmitems.bench.targets import AsyncDatabaseTarget, BenchRows, SyncDatabaseTarget

if TYPE_CHECKING:
    from dmitems.bench.processes import Shard
    from dmitems.config import Settings

ROW_PREFIX = "dmitems-bench-"


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
class RunContext:
    spec: BenchSpec
    settings: Settings
    prefix: str
    urls: dict[str, str] = field(default_factory=dict)  # mode -> server URL (HTTP target)
    cleanup_over_http: bool = False

    def settings_for(self, plan: RunPlan) -> Settings:
        """The settings of one run: its pool size (``--pool-size`` may sweep several)."""
        if plan.pool_size == self.settings.database_pool_size:
            return self.settings
        return self.settings.model_copy(update={"database_pool_size": plan.pool_size})


def seed_sizes(concurrency: int) -> tuple[int, int]:
    """(rows to seed, how many of them may be deleted): enough that requests rarely collide."""
    stable = min(500, max(50, 2 * concurrency))
    return stable + concurrency, concurrency


def _api_key(settings: Settings) -> str | None:
    return settings.api_key.get_secret_value() if settings.api_key is not None else None


def make_target(context: RunContext, plan: RunPlan, rows: BenchRows, concurrency: int) -> Any:
    spec, settings, mode = context.spec, context.settings, plan.mode
    if spec.target == "db":
        from dmitems.db import Database

        database = Database(context.settings_for(plan))
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


async def _prepare(
    target: Any, seeder: Any, context: RunContext, plan: RunPlan, concurrency: int,
    rate: float | None, observer: Observer,
) -> float:
    """Open the pool (timed: the connection time), seed the rows, warm up; return seconds."""
    spec = context.spec
    connect_s = float(await target.open(min(concurrency, plan.pool_size)))
    if seeder is not None:
        await seeder.open(16)
    if {"get", "update", "delete"} & set(spec.mix):
        await (seeder or target).seed(*seed_sizes(concurrency))
    if spec.warmup > 0:
        observer.run_started(plan, "warm-up", None)
        warm = Recorder(tuple(spec.mix))
        await drive(target, spec, concurrency, rate, load.Budget(spec.warmup, None), warm)
    return connect_s


async def _window(
    target: Any, spec: BenchSpec, plan: RunPlan, concurrency: int, rate: float | None,
    observer: Observer, shard: Shard | None,
) -> tuple[Recorder, dict[str, Any]]:
    """The measured window: the recording, and what the instruments saw."""
    pool = await target.pool() if hasattr(target, "pool") else None
    gauge = PoolGauge(pool).attach() if pool is not None else None
    try:
        lag = LoopLag().start() if not runs_on_threads(target) else None
        recorder = Recorder(tuple(spec.mix))
        observer.run_started(plan, "measure", recorder if shard is None else None)
        cpu = CpuMeter()
        requests = spec.requests
        if requests and shard is not None:
            requests = shard.share(requests)
        await drive(target, spec, concurrency, rate, load.Budget(spec.duration, requests), recorder)
        cpu_share = cpu.share()
        if lag is not None:
            await lag.stop()
        return recorder, {
            "cpu_share": cpu_share,
            "loop_lag": lag.report() if lag is not None else None,
            "pool": gauge.report() if gauge is not None else None,
            # dmAsync runs driver calls on the loop's default executor; other async drivers don't.
            "executor": executor_threads(asyncio.get_running_loop())
            if plan.mode == "async" and _backend_name(target) == "dm" else None,
        }
    finally:
        if gauge is not None:
            gauge.detach()


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
    target = make_target(context, plan, rows, concurrency)
    seeder = _seeder(context, plan.mode, target, rows)
    try:
        connect_s = await _prepare(target, seeder, context, plan, concurrency, rate, observer)
        if shard is not None and shard.barrier is not None:
            await asyncio.to_thread(shard.barrier.wait, 120)
        recorder, extras = await _window(target, context.spec, plan, concurrency, rate,
                                         observer, shard)
        removed = 0
        if context.cleanup_over_http:
            removed = await (seeder or target).remove_remaining()
        return {
            "snapshot": recorder.snapshot(),
            "extras": {"connect_s": connect_s, **extras},
            "rows": {**rows.report(), "removed": removed},
        }
    finally:
        await target.close()
        if seeder is not None:
            await seeder.close()


def _backend_name(target: Any) -> str | None:
    database = getattr(target, "database", None)
    return database.backend.name if database is not None else None


# -- the whole benchmark -------------------------------------------------------------


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
    limit = None
    failed = True
    try:
        if uses_database:
            await _ensure_schema(settings, observer)
        if spec.sweeps_pool:
            from dmitems.bench.advisor import server_connection_limit

            limit = await server_connection_limit(settings)
        if spec.target == "http":
            servers = await _connect_http(context, config_path, observer)
        document["environment"]["servers"] = dict(context.urls) or None
        for plan in spec.plan():
            record = await _one_run(context, plan, document, observer)
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
    if limit is not None:
        results.add_advice(document, limit)
    return document


async def _connect_http(
    context: RunContext, config_path: Path | None, observer: Observer
) -> list[tuple[str, Any]]:
    """The server URL of each mode: the one given by --url, or servers started here."""
    spec = context.spec
    if spec.url is not None:
        context.urls = {mode: spec.url for mode in spec.run_modes}
        context.cleanup_over_http = not spec.keep
        return []
    servers = await _start_servers(spec, context.settings, config_path, observer)
    context.urls = {mode: server.url for mode, server in servers}
    return servers


async def _one_run(
    context: RunContext, plan: RunPlan, document: dict[str, Any], observer: Observer
) -> dict[str, Any]:
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    run_prefix = f"{context.prefix}{plan.index}-"
    if context.spec.processes > 1:
        from dmitems.bench.processes import measure_in_processes

        outcomes = await measure_in_processes(context, plan, run_prefix, observer)
    else:
        rows = BenchRows(run_prefix)
        outcomes = [
            await measure(context, plan, plan.concurrency, context.spec.rate, rows, observer)
        ]
    backend = document["environment"]["database"]["backend"]
    return run_record(plan, context.spec, backend, started_at, outcomes)


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
