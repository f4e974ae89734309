"""One run's record in the result document: merged figures, breakdown, warnings.

The recordings of a run (one, or one per process with ``--processes``) are
merged here into the record that ``result.schema.json`` describes as a run.
"""

from __future__ import annotations

from typing import Any

from dmitems.bench.recorder import Recorder, encode_histogram, histogram_stats
from dmitems.bench.spec import BenchSpec, RunPlan

CPU_BOUND_SHARE = 0.9
LOOP_LAG_WARN_MS = 20.0


def run_record(
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
        "pool_size": plan.pool_size,
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
