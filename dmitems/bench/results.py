"""The result document: environment, settings, runs, summary; reading it back; comparing two.

The document follows ``result.schema.json`` (shipped in this package).
``SCHEMA_VERSION`` changes whenever a field changes meaning or goes away;
new optional fields keep the version.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmitems import __version__
from dmitems.config import mask_url
from dmitems.errors import InvalidInput

if TYPE_CHECKING:
    from dmitems.bench.spec import BenchSpec
    from dmitems.config import Settings

SCHEMA_NAME = "dmitems-bench"
SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("result.schema.json")
# The figures compared between modes and between files; "higher" says which way is better.
HEADLINE = (
    ("throughput_rps", "higher"),
    ("mean_ms", "lower"),
    ("stdev_ms", "lower"),
    ("p50_ms", "lower"),
    ("p90_ms", "lower"),
    ("p95_ms", "lower"),
    ("p99_ms", "lower"),
    ("p99_9_ms", "lower"),
    ("max_ms", "lower"),
)
PACKAGES = (
    "sqlalchemy", "aiosqlite", "asyncpg", "psycopg", "dmPython", "dmAsync", "dmSQLAlchemy",
    "aiohttp", "httpx", "fastapi", "uvicorn", "hdrhistogram",
)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(settings: Settings, spec: BenchSpec) -> dict[str, Any]:
    """What must match for a fair comparison, and what a reader needs to reproduce it."""
    import asyncio

    from dmitems.bench.instruments import loop_implementation
    from dmitems.db.engines import backend_for, parse_url

    backend = backend_for(parse_url(settings.database_url))
    policy = asyncio.get_event_loop_policy()
    loop = policy.new_event_loop()
    try:
        loop_name = loop_implementation(loop)
    finally:
        loop.close()
    return {
        "dmitems": __version__,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "event_loop": loop_name,
        "packages": {name: _version(name) for name in PACKAGES if _version(name)},
        "database": {
            "url": mask_url(settings.database_url) if spec.url is None else None,
            "backend": backend.name,
            "async_driver": backend.async_driver,
            "sync_driver": backend.sync_driver,
            "pool_size": settings.database_pool_size,
            "max_overflow": settings.database_max_overflow,
            "pool_capacity": settings.pool_capacity,
            "pool_timeout_s": settings.database_pool_timeout,
            "pool_queue": settings.database_pool_queue,
        },
        "servers": None,
        "argv": [settings.redact(arg) for arg in sys.argv[1:]],
    }


def new_document(spec: BenchSpec, settings: Settings, run_id: str, prefix: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(settings, spec),
        "settings": spec.describe(),
        "warnings": fairness_warnings(spec, settings),
        "runs": [],
        "summary": [],
        "thresholds": [],
        "cleanup": {"prefix": prefix},
    }


def fairness_warnings(spec: BenchSpec, settings: Settings) -> list[str]:
    found = []
    capacity = settings.pool_capacity
    if spec.url is None:
        over = [level for level in spec.levels if level > capacity]
        if over and len(spec.pool_sizes) == 1:
            found.append(
                f"concurrency {', '.join(map(str, over))} exceeds the pool capacity {capacity} "
                f"(pool_size {settings.database_pool_size} + max_overflow "
                f"{settings.database_max_overflow}): requests beyond it queue for a connection, "
                "in both modes alike; the pool-wait column shows how long"
            )
    if spec.target == "http" and spec.url is not None:
        found.append(
            "--url: the server's pool, mode and database are whatever it was started with; "
            "the benchmark cannot check they match"
        )
    return found


def finish_document(document: dict[str, Any]) -> None:
    document["summary"] = summarize(document["runs"], document["settings"]["modes"])
    for run in document["runs"]:
        document["warnings"].extend(run["warnings"])


def add_advice(document: dict[str, Any], limit: dict[str, Any]) -> None:
    """A pool-size sweep's advice (see :mod:`dmitems.bench.advisor`), and its warnings."""
    from dmitems.bench.advisor import P99_ALLOWANCE, THROUGHPUT_SHARE, advise

    levels = advise(document["summary"], document["settings"]["modes"], limit)
    document["advice"] = {
        "rule": {"throughput_share": THROUGHPUT_SHARE, "p99_allowance": P99_ALLOWANCE},
        "limit": limit,
        "levels": levels,
    }
    over = sorted({size for level in levels for advice in level["modes"].values()
                   for size in advice["over_limit"]})
    if over:
        document["warnings"].append(
            f"pool size {', '.join(map(str, over))} is more than the server allows for "
            f"{limit['server_workers']} worker(s) ({limit['usable_connections']} connections, "
            f"{limit['source']}): left out of the recommendation"
        )


def _median_stats(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each figure over the repeats, with the spread of the headline figures."""
    if len(runs) == 1:
        merged = dict(runs[0]["total"])
        merged["spread"] = None
        return merged
    merged = {}
    for key, value in runs[0]["total"].items():
        if isinstance(value, (int, float)) or value is None:
            values = [run["total"][key] for run in runs if run["total"][key] is not None]
            merged[key] = statistics.median(values) if values else None
    kinds: dict[str, int] = {}
    for run in runs:
        for kind, count in run["total"]["errors_by_kind"].items():
            kinds[kind] = kinds.get(kind, 0) + count
    merged["errors_by_kind"] = kinds
    spread = {}
    for key, _ in HEADLINE:
        values = [run["total"][key] for run in runs if run["total"][key] is not None]
        if values:
            middle = statistics.median(values)
            spread[key] = {
                "min": min(values),
                "max": max(values),
                "relative": (max(values) - min(values)) / middle if middle else None,
            }
    merged["spread"] = spread
    return merged


def _pool_wait_p99(runs: list[dict[str, Any]]) -> float | None:
    values = [
        run["breakdown"]["pool_wait"]["p99_ms"] for run in runs
        if run.get("breakdown", {}).get("pool_wait")
    ]
    return statistics.median(values) if values else None


def _group(run: dict[str, Any]) -> tuple[int, int | None]:
    return run["concurrency"], run.get("pool_size")


def summarize(runs: list[dict[str, Any]], modes: list[str]) -> list[dict[str, Any]]:
    """One entry per concurrency level and pool size: each mode's (median) figures, the ratios."""
    groups: list[tuple[int, int | None]] = []
    for run in runs:
        if _group(run) not in groups:
            groups.append(_group(run))
    summary = []
    for group in groups:
        by_mode = {}
        for mode in modes:
            chosen = [r for r in runs if _group(r) == group and r["mode"] == mode]
            if chosen:
                by_mode[mode] = _median_stats(chosen)
                by_mode[mode]["pool_wait_p99_ms"] = _pool_wait_p99(chosen)
        entry: dict[str, Any] = {
            "concurrency": group[0], "pool_size": group[1], "modes": by_mode, "ratio": None,
        }
        if len(modes) == 2 and all(mode in by_mode for mode in modes):
            base, other = by_mode[modes[0]], by_mode[modes[1]]
            entry["ratio"] = {
                "label": f"{modes[1]}/{modes[0]}",
                **{key: _ratio(other[key], base[key]) for key, _ in HEADLINE},
            }
        summary.append(entry)
    return summary


def _ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom == 0:
        return None
    return top / bottom


# -- reading and comparing -----------------------------------------------------


def load_schema() -> dict[str, Any]:
    import json

    with SCHEMA_FILE.open(encoding="utf-8") as handle:
        return dict(json.load(handle))


def read_document(path: Path) -> dict[str, Any]:
    """A result file written by ``--json``, checked to be one (any supported version)."""
    import orjson

    try:
        document = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise InvalidInput(f"result file not found: {path}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError:
        raise InvalidInput(f"{path} is not JSON; expected a file written by `dmitems bench --json`")
    if not isinstance(document, dict) or document.get("schema") != SCHEMA_NAME:
        raise InvalidInput(f"{path} is not a dmitems bench result (no \"schema\": \"{SCHEMA_NAME}\")")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise InvalidInput(
            f"{path} has schema_version {document.get('schema_version')}; this dmitems reads "
            f"version {SCHEMA_VERSION}"
        )
    return document


def _change(
    group: tuple[int, int | None], mode: str, metric: str, before: float | None,
    after: float | None, better: str,
) -> dict[str, Any]:
    change = _ratio(after, before)
    return {
        "concurrency": group[0],
        "pool_size": group[1],
        "mode": mode,
        "metric": metric,
        "before": before,
        "after": after,
        "change": None if change is None else change - 1,
        "better": _better(before, after, better),
    }


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of (concurrency, pool size, mode, metric, before, after, change) for what both
    files hold."""
    rows = []
    earlier = {_group(entry): entry for entry in before["summary"]}
    for entry in after["summary"]:
        level, old = _group(entry), earlier.get(_group(entry))
        if old is None:
            continue
        for mode, figures in entry["modes"].items():
            previous = old["modes"].get(mode)
            if previous is not None:
                rows.extend(
                    _change(level, mode, key, previous.get(key), figures.get(key), better)
                    for key, better in (*HEADLINE, ("errors", "lower"))
                )
        new_ratio, old_ratio = entry["ratio"], old["ratio"]
        if new_ratio and old_ratio and new_ratio["label"] == old_ratio["label"]:
            rows.extend(
                _change(level, new_ratio["label"], key, old_ratio.get(key), new_ratio.get(key),
                        better)
                for key, better in (("throughput_rps", "higher"), ("p99_ms", "lower"))
            )
    return rows


def compare_advice(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Each mode's pool-size advice in both files, for every level both files advise on."""
    earlier, later = _picks(before), _picks(after)
    return [
        {"concurrency": key[0], "mode": key[1], "before": earlier[key], "after": pick}
        for key, pick in later.items() if key in earlier
    ]


def _picks(document: dict[str, Any]) -> dict[tuple[int, str], Any]:
    """(concurrency, mode) -> the recommended pool size, or the outcome when there is none."""
    found = {}
    for level in (document.get("advice") or {}).get("levels", []):
        for mode, advice in level["modes"].items():
            pick = advice["pool_size"] if advice["outcome"] == "recommend" else advice["outcome"]
            found[(level["concurrency"], mode)] = pick
    return found


def _better(before: float | None, after: float | None, direction: str) -> bool | None:
    if before is None or after is None or before == after:
        return None
    return after > before if direction == "higher" else after < before
