"""Showing benchmark results in a terminal: tables, latency histogram, comparison.

This module and its two neighbours (:mod:`~dmitems.bench.live`, the live view;
:mod:`~dmitems.bench.advice_report`, the pool-size advice) are the only bench
modules that use rich.  They read the result document (see results.py) and
never change it.

Every table fits 80 columns whole: few columns, short headings that may wrap,
numbers never cut (``overflow="fold"`` is the last resort, not the layout).
The tests render each table at 80 and 120 columns and look for "…".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich import box

from dmitems.bench.recorder import decode_histogram

if TYPE_CHECKING:
    from rich.console import Console

METRIC_LABELS = (
    ("throughput_rps", "throughput (req/s)"),
    ("mean_ms", "mean (ms)"),
    ("stdev_ms", "stdev (ms)"),
    ("p50_ms", "p50 (ms)"),
    ("p90_ms", "p90 (ms)"),
    ("p95_ms", "p95 (ms)"),
    ("p99_ms", "p99 (ms)"),
    ("p99_9_ms", "p99.9 (ms)"),
    ("max_ms", "max (ms)"),
)
BAR = "█"


def number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) or (isinstance(value, float) and value >= 100):
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


# -- the final report ------------------------------------------------------------------


def table(title: str, **options: Any) -> Any:
    """A compact table: no outer frame, one space between columns."""
    from rich.table import Table

    options.setdefault("box", box.SIMPLE_HEAD)
    options.setdefault("padding", (0, 1, 0, 0))
    return Table(title=title, title_justify="left", caption_justify="left", **options)


def column(target: Any, heading: str, left: bool = False) -> None:
    target.add_column(heading, justify="left" if left else "right", overflow="fold")


def render(console: Console, document: dict[str, Any]) -> None:
    """Everything a person reads after a run, in order of importance."""
    from dmitems.bench.advice_report import advice_renderables

    console.print(fairness_table(document))
    if len(document["summary"]) == 1:
        console.print(main_table(document))
    else:
        console.print(sweep_table(document))
    for renderable in advice_renderables(document):
        console.print(renderable)
    for each in operations_tables(document):
        console.print(each)
    console.print(time_table(document))
    console.print(pool_table(document))
    console.print(histogram_panel(document, console.width))
    if document["settings"]["client"] == "sequential":
        console.print(
            "[bold]What this measures:[/bold] one client sending requests one after another "
            "against many requests in flight at once, on the same async server. That is client "
            "concurrency, not sync against async database access; for that run "
            "`dmitems bench --target http` without --client."
        )


QUEUES = {
    "fifo": "fifo: a freed connection goes to the longest waiter, in both modes (dmitems' line)",
    "native": "native: each pool's own behaviour, in both modes (newcomers may barge in)",
}


def _pool_row(document: dict[str, Any]) -> str:
    database, settings = document["environment"]["database"], document["settings"]
    sizes = settings.get("pool_sizes") or [database["pool_size"]]
    size = ", ".join(map(str, sizes))
    text = f"pool_size {size} + max_overflow {database['max_overflow']}"
    if len(sizes) == 1:
        text += f" = {database['pool_capacity']}"
    return text + " per mode (opened before measuring)"


def fairness_table(document: dict[str, Any]) -> Any:
    environment, settings = document["environment"], document["settings"]
    database = environment["database"]
    result = table("What is compared (must match)", show_header=False, box=box.SQUARE,
                   padding=(0, 1))
    result.add_column(style="bold", no_wrap=True)
    result.add_column(overflow="fold")
    target = settings["target"]
    load = (
        f"open loop, {settings['rate']:g} req/s, {settings['arrival']} arrivals"
        if settings["load_model"] == "open" else "closed loop"
    )
    window = (
        f"{settings['duration_s']:g} s" if settings["duration_s"] is not None else ""
    ) + (f" / {settings['requests']:,} requests" if settings["requests"] else "")
    queue = database.get("pool_queue")
    rows = [
        ("target", f"{target} ({', '.join(settings['modes'])})"),
        ("load", f"{load}; {window.strip(' /')} after {settings['warmup_s']:g} s warm-up; "
                 f"repeat {settings['repeat']}; processes {settings['processes']}"),
        ("mix", ", ".join(f"{name}={weight}" for name, weight in settings["mix"].items())),
        ("database", database["url"] or "(the server's)"),
        ("drivers", f"sync {database['sync_driver']}, async {database['async_driver']}"),
        ("pool", _pool_row(document)),
        ("pool queue", f"pool_queue {QUEUES.get(queue, queue)}" if queue else "(the server's)"),
        ("sync side", "one OS thread per concurrent request" if target == "db"
         else "`dmitems serve --mode sync` (def handlers in the server's thread pool)"),
        ("async side", f"one task per concurrent request on {environment['event_loop']}"
         if target == "db" else "`dmitems serve --mode async` (async def handlers)"),
        ("versions", ", ".join(f"{k} {v}" for k, v in environment["packages"].items())),
        ("machine", f"{environment['cpu_count']} CPUs, Python {environment['python']}, "
                    f"{environment['platform']}"),
    ]
    if environment.get("servers"):
        rows.append(("servers", ", ".join(f"{m} {u}" for m, u in environment["servers"].items())))
    for key, value in rows:
        result.add_row(key, value)
    return result


def _with_spread(figures: dict[str, Any], key: str) -> str:
    cell = number(figures.get(key), 1 if key == "throughput_rps" else 2)
    spread = (figures.get("spread") or {}).get(key)
    if spread and spread["relative"] is not None:
        cell += f" ±{spread['relative'] / 2:.0%}"
    return cell


def main_table(document: dict[str, Any]) -> Any:
    entry = document["summary"][0]
    modes = list(entry["modes"])
    repeat = document["settings"]["repeat"]
    title = f"Concurrency {entry['concurrency']}" + (
        f" — median of {repeat} runs (± half the spread, max-min over median)"
        if repeat > 1 else ""
    )
    result = table(title)
    column(result, "", left=True)
    for mode in modes:
        column(result, mode)
    ratio_label = entry["ratio"]["label"] if entry["ratio"] else None
    if ratio_label:
        column(result, ratio_label)
    for key, label in METRIC_LABELS:
        cells = [_with_spread(entry["modes"][mode], key) for mode in modes]
        if ratio_label:
            cells.append(ratio(entry["ratio"].get(key)))
        result.add_row(label, *cells)
    result.add_row("errors", *(number(entry["modes"][m]["errors"], 0) for m in modes),
                   *([""] if ratio_label else []))
    return result


def sweep_table(document: dict[str, Any]) -> Any:
    """One row per concurrency level, pool size and mode, then the ratio of the modes."""
    result = table("Sweep: median figures per concurrency level and pool size (ms)")
    for heading in ("concurrency", "pool", "mode", "req/s", "p50", "p99", "errors"):
        column(result, heading, left=heading == "mode")
    for entry in document["summary"]:
        level, size = str(entry["concurrency"]), str(entry.get("pool_size") or "")
        for mode, figures in entry["modes"].items():
            result.add_row(level, size, mode, number(figures.get("throughput_rps"), 1),
                           number(figures.get("p50_ms")), number(figures.get("p99_ms")),
                           number(figures.get("errors"), 0))
            level = size = ""
        if entry["ratio"]:
            result.add_row("", "", entry["ratio"]["label"],
                           ratio(entry["ratio"].get("throughput_rps")),
                           ratio(entry["ratio"].get("p50_ms")),
                           ratio(entry["ratio"].get("p99_ms")), "", end_section=True)
    return result


def _errors_text(kinds: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count:,}" for kind, count in kinds.items()) or "0"


def run_label(document: dict[str, Any], run: dict[str, Any]) -> str:
    label = f"{run['mode']} c={run['concurrency']}"
    if len(document["settings"].get("pool_sizes") or []) > 1:
        label += f" pool {run['pool_size']}"
    if document["settings"]["repeat"] > 1:
        label += f" r{run['repeat'] + 1}"
    return label


OPERATION_FIGURES = ("p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms")


def operations_tables(document: dict[str, Any]) -> list[Any]:
    """Per run: each operation's figures (mean, stdev and p95 are in --json; the kinds of
    error are in the caption)."""
    tables = []
    for run in document["runs"]:
        result = table(run_label(document, run).replace(" c=", " · concurrency ", 1) + " (ms)")
        for heading in ("op", "count", "errors", "req/s", "p50", "p90", "p99", "p99.9", "max"):
            column(result, heading, left=heading == "op")
        for name, stats in [*run["operations"].items(), ("total", run["total"])]:
            result.add_row(
                f"[bold]{name}[/bold]" if name == "total" else name,
                f"{stats['count']:,}",
                number(stats["errors"], 0),
                number(stats["throughput_rps"], 1),
                *(number(stats[key]) for key in OPERATION_FIGURES),
            )
        caption = [f"latency from the {'intended' if run['late'] is not None else 'actual'}"
                   " send time; connection time (pool opened before measuring) "
                   f"{run['connect_s'] * 1000:.0f} ms"]
        if run["late"] is not None:
            caption.append(f"late {run['late']:,}, dropped {run['dropped']:,}")
        if run["skipped"]:
            caption.append(f"skipped {run['skipped']:,}")
        if run["total"]["errors_by_kind"]:
            caption.append(f"errors: {_errors_text(run['total']['errors_by_kind'])}")
        result.caption = "; ".join(caption)
        tables.append(result)
    return tables


def time_table(document: dict[str, Any]) -> Any:
    """Where the time goes: waiting for a pooled connection, then using it."""
    result = table("Where the time goes (ms)")
    for heading in ("run", "wait p50", "wait p99", "wait max", "use p50", "use p99", "use max"):
        column(result, heading, left=heading == "run")
    for run in document["runs"]:
        wait, use = run["breakdown"]["pool_wait"] or {}, run["breakdown"]["execution"] or {}
        result.add_row(
            run_label(document, run),
            *(number(wait.get(key)) for key in ("p50_ms", "p99_ms", "max_ms")),
            *(number(use.get(key)) for key in ("p50_ms", "p99_ms", "max_ms")),
        )
    result.caption = (
        "wait = waiting for a pooled connection (in the pool queue); use = the statements "
        "and commit on it"
    )
    return result


def _threads(parts: dict[str, Any]) -> str:
    if parts["threads"]:
        return str(parts["threads"])
    executor = parts["executor"]
    if not executor:
        return "–"
    return f"{executor['threads']}" + ("" if executor["configured"] else " (default)")


def pool_table(document: dict[str, Any]) -> Any:
    """The pool and the benchmark process: connections, loop lag, threads, CPU."""
    result = table("Pool and process")
    for heading in ("run", "queue wait p99", "new conns", "peak use", "loop lag p99",
                    "threads", "CPU"):
        column(result, heading, left=heading == "run")
    for run in document["runs"]:
        parts = run["breakdown"]
        pool, lag, queue = parts["pool"] or {}, parts["loop_lag"], parts["queue_wait"]
        result.add_row(
            run_label(document, run),
            "–" if not queue else number(queue["p99_ms"]),
            number(pool.get("connections_opened"), 0),
            number(pool.get("peak_in_use"), 0),
            "–" if not lag else number(lag["p99_ms"]),
            _threads(parts),
            f"{parts['cpu_share']:.0%}",
        )
    result.caption = (
        "queue wait (ms) = open loop only, intended send time to a free worker; new conns = "
        "connections opened during the window (a warm pool opens none); loop lag in ms; "
        "threads = the sync side's worker threads, or on DM the loop's default executor that "
        "dmAsync runs driver calls on; CPU = the benchmark process's CPU time over wall time"
    )
    return result


def _histograms(document: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The last concurrency level and pool size's histogram per mode (repeats merged)."""
    last = document["runs"][-1] if document["runs"] else None
    histograms: dict[str, Any] = {}
    for run in document["runs"]:
        if (run["concurrency"], run.get("pool_size")) != (last["concurrency"], last.get("pool_size")):
            continue
        histogram = decode_histogram(run["histogram"])
        if run["mode"] in histograms:
            histograms[run["mode"]].add(histogram)
        else:
            histograms[run["mode"]] = histogram
    where = f"concurrency {last['concurrency']}" if last else ""
    if last and len(document["summary"]) > 1:
        where += f", pool {last.get('pool_size')}; --plot draws every run"
    return where, {k: h for k, h in histograms.items() if h.get_total_count()}


def histogram_panel(document: dict[str, Any], width: int = 80) -> Any:
    """Latency distribution per mode on shared logarithmic buckets, as text bars."""
    where, populated = _histograms(document)
    result = table("Latency distribution (share of requests per bucket)", box=None,
                   caption=where, min_width=min(width, 72))
    if not populated:
        result.add_column("")
        result.add_row("no successful requests")
        return result
    low = min(h.get_min_value() for h in populated.values())
    high = max(h.get_max_value() for h in populated.values())
    edges = _log_edges(max(1, low), max(high, low + 1))
    column(result, "≤ ms")
    for name in populated:
        column(result, name, left=True)
    # The bar's room: what is left after the bucket label and each column's " 100%".
    bar_width = max(4, min(40, (width - 12) // len(populated) - 7))
    shares = {name: _bucket_shares(h, edges) for name, h in populated.items()}
    for index in range(len(edges) - 1):
        cells = []
        for name in populated:
            share = shares[name][index]
            bar = BAR * round(share * bar_width) if share else ""
            cells.append(f"{bar} {share:.0%}" if share >= 0.005 else "")
        result.add_row(f"{edges[index + 1] / 1000:,.2f}", *cells)
    return result


def _log_edges(low: int, high: int, buckets: int = 12) -> list[float]:
    start, stop = math.log10(low), math.log10(high)
    step = (stop - start) / buckets or 1
    return [10 ** (start + step * i) for i in range(buckets + 1)]


def _bucket_shares(histogram: Any, edges: list[float]) -> list[float]:
    total = histogram.get_total_count()
    counts = [0] * (len(edges) - 1)
    for item in histogram.get_recorded_iterator():
        value = item.value_iterated_to
        index = next((i for i in range(len(edges) - 1) if value <= edges[i + 1]), len(counts) - 1)
        counts[index] += item.count_at_value_iterated_to
    return [count / total for count in counts]


def thresholds_lines(console: Console, checks: list[dict[str, Any]]) -> None:
    for check in checks:
        if check["broken"]:
            console.print(f"[red]✗ fail-if {check['expression']}[/red]: {'; '.join(check['where'])}")
        else:
            console.print(f"[green]✓ fail-if {check['expression']}[/green]: not met")


def compare_table(rows: list[dict[str, Any]], before: str, after: str) -> Any:
    result = table(f"{before} → {after}")
    for heading in ("concurrency", "pool", "mode", "metric", "before", "after", "change"):
        column(result, heading, left=heading in ("mode", "metric"))
    for row in rows:
        change = row["change"]
        text = "–" if change is None else f"{change:+.1%}"
        if row["better"] is True:
            text = f"[green]{text}[/green]"
        elif row["better"] is False:
            text = f"[red]{text}[/red]"
        result.add_row(str(row["concurrency"]), str(row.get("pool_size") or ""), row["mode"],
                       row["metric"], number(row["before"]), number(row["after"]), text)
    return result
