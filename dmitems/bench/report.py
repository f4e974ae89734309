"""Showing benchmark results in a terminal: live view, tables, latency histogram, comparison.

This is the only bench module that uses rich.  It reads the result document
(see results.py) and never changes it.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from rich import box

from dmitems.bench.recorder import decode_histogram

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from dmitems.bench.recorder import Recorder
    from dmitems.bench.spec import RunPlan

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


class LiveView:
    """The runner's observer: a rich Live panel refreshed each second, or plain lines."""

    def __init__(self, console: Console, live: bool, quiet: bool) -> None:
        self.console = console
        self.live_enabled = live and not quiet
        self.quiet = quiet
        self.live: Live | None = None
        self.plan: RunPlan | None = None
        self.phase = ""
        self.recorder: Recorder | None = None
        self.started = time.perf_counter()

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"[dim]{text}[/dim]")

    def run_started(self, plan: RunPlan, phase: str, recorder: Recorder | None) -> None:
        self.plan, self.phase, self.recorder = plan, phase, recorder
        self.started = time.perf_counter()
        if self.live_enabled and self.live is None:
            from rich.live import Live

            self.live = Live(
                get_renderable=self._panel, console=self.console, refresh_per_second=1,
                transient=True,
            )
            self.live.start()

    def run_finished(self, plan: RunPlan, run: dict[str, Any]) -> None:
        self._stop_live()
        if self.quiet:
            return
        total = run["total"]
        self.console.print(
            f"{plan.mode:>10} c={plan.concurrency:<5} repeat {plan.repeat + 1}: "
            f"{total['ok']:,} ok, {total['errors']:,} errors in {run['duration_s']:.1f} s, "
            f"{number(total['throughput_rps'], 1)} req/s, p50 {number(total['p50_ms'])} ms, "
            f"p99 {number(total['p99_ms'])} ms"
        )

    def close(self) -> None:
        self._stop_live()

    def _stop_live(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _panel(self) -> RenderableType:
        from rich.panel import Panel
        from rich.table import Table

        plan = self.plan
        title = f"{plan.mode} · concurrency {plan.concurrency} · {self.phase}" if plan else "bench"
        grid = Table.grid(padding=(0, 3))
        if self.recorder is None:
            grid.add_row(f"{time.perf_counter() - self.started:.0f} s")
            return Panel(grid, title=title, expand=False)
        figures = self.recorder.live()
        for label in ("elapsed", "req/s", "p50", "p99", "ok", "errors", "in flight"):
            grid.add_column(label)
        grid.add_row(
            *(f"[bold]{label}[/bold]" for label in
              ("elapsed", "req/s", "p50 ms", "p99 ms", "ok", "errors", "in flight"))
        )
        grid.add_row(
            f"{figures['elapsed']:.0f} s",
            f"{figures['rps']:,}",
            number(figures["p50_ms"]),
            number(figures["p99_ms"]),
            f"{figures['requests']:,}",
            f"[red]{figures['errors']:,}[/red]" if figures["errors"] else "0",
            str(figures["in_flight"]),
        )
        return Panel(grid, title=title, expand=False)


# -- the final report ------------------------------------------------------------------


def render(console: Console, document: dict[str, Any]) -> None:
    """Everything a person reads after a run, in order of importance."""
    console.print(fairness_table(document))
    if len(document["summary"]) == 1:
        console.print(main_table(document))
    else:
        console.print(sweep_table(document))
    for table in operations_tables(document):
        console.print(table)
    console.print(breakdown_table(document))
    console.print(histogram_panel(document))
    if document["settings"]["client"] == "sequential":
        console.print(
            "[bold]What this measures:[/bold] one client sending requests one after another "
            "against many requests in flight at once, on the same async server. That is client "
            "concurrency, not sync against async database access; for that run "
            "`dmitems bench --target http` without --client."
        )


def fairness_table(document: dict[str, Any]) -> Any:
    from rich.table import Table

    environment, settings = document["environment"], document["settings"]
    database = environment["database"]
    table = Table(title="What is compared (must match)", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    target = settings["target"]
    load = (
        f"open loop, {settings['rate']:g} req/s, {settings['arrival']} arrivals"
        if settings["load_model"] == "open" else "closed loop"
    )
    window = (
        f"{settings['duration_s']:g} s" if settings["duration_s"] is not None else ""
    ) + (f" / {settings['requests']:,} requests" if settings["requests"] else "")
    rows = [
        ("target", f"{target} ({', '.join(settings['modes'])})"),
        ("load", f"{load}; {window.strip(' /')} after {settings['warmup_s']:g} s warm-up; "
                 f"repeat {settings['repeat']}; processes {settings['processes']}"),
        ("mix", ", ".join(f"{name}={weight}" for name, weight in settings["mix"].items())),
        ("database", database["url"] or "(the server's)"),
        ("drivers", f"sync {database['sync_driver']}, async {database['async_driver']}"),
        ("pool", f"pool_size {database['pool_size']} + max_overflow {database['max_overflow']} "
                 f"= {database['pool_capacity']} per mode (opened before measuring)"),
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
        table.add_row(key, value)
    return table


def main_table(document: dict[str, Any]) -> Any:
    from rich.table import Table

    entry = document["summary"][0]
    modes = list(entry["modes"])
    repeat = document["settings"]["repeat"]
    title = f"Concurrency {entry['concurrency']}" + (
        f" — median of {repeat} runs (spread = max-min over median)" if repeat > 1 else ""
    )
    table = Table(title=title, title_justify="left")
    table.add_column("")
    for mode in modes:
        table.add_column(mode, justify="right")
    ratio_label = entry["ratio"]["label"] if entry["ratio"] else None
    if ratio_label:
        table.add_column(ratio_label, justify="right")
    for key, label in METRIC_LABELS:
        cells = []
        for mode in modes:
            figures = entry["modes"][mode]
            cell = number(figures.get(key), 1 if key == "throughput_rps" else 2)
            spread = (figures.get("spread") or {}).get(key)
            if spread and spread["relative"] is not None:
                cell += f" ±{spread['relative'] / 2:.0%}"
            cells.append(cell)
        if ratio_label:
            cells.append(ratio(entry["ratio"].get(key)))
        table.add_row(label, *cells)
    table.add_row("errors", *(number(entry["modes"][m]["errors"], 0) for m in modes),
                  *([""] if ratio_label else []))
    return table


def sweep_table(document: dict[str, Any]) -> Any:
    from rich.table import Table

    modes = document["settings"]["modes"]
    table = Table(title="Sweep: one row per concurrency level", title_justify="left")
    table.add_column("concurrency", justify="right")
    for mode in modes:
        table.add_column(f"{mode} req/s", justify="right")
    label = f"{modes[1]}/{modes[0]}" if len(modes) == 2 else None
    if label:
        table.add_column(f"{label} req/s", justify="right")
    for mode in modes:
        table.add_column(f"{mode} p50", justify="right")
        table.add_column(f"{mode} p99", justify="right")
    if label:
        table.add_column(f"{label} p99", justify="right")
    table.add_column("errors", justify="right")
    for entry in document["summary"]:
        figures = entry["modes"]
        cells = [str(entry["concurrency"])]
        cells += [number(figures.get(m, {}).get("throughput_rps"), 1) for m in modes]
        if label:
            cells.append(ratio((entry["ratio"] or {}).get("throughput_rps")))
        for mode in modes:
            cells += [number(figures.get(mode, {}).get("p50_ms")),
                      number(figures.get(mode, {}).get("p99_ms"))]
        if label:
            cells.append(ratio((entry["ratio"] or {}).get("p99_ms")))
        cells.append(number(sum(f.get("errors") or 0 for f in figures.values()), 0))
        table.add_row(*cells)
    return table


def _errors_text(kinds: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in kinds.items()) or "0"


def operations_tables(document: dict[str, Any]) -> list[Any]:
    """Per mode and level: each operation's figures (first repeat's run shown per repeat)."""
    from rich.table import Table

    tables = []
    for run in document["runs"]:
        title = f"{run['mode']} · concurrency {run['concurrency']}"
        if document["settings"]["repeat"] > 1:
            title += f" · repeat {run['repeat'] + 1}"
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
        for heading in ("op", "count", "errors", "req/s", "mean", "stdev", "p50", "p90",
                        "p95", "p99", "p99.9", "max"):
            table.add_column(heading, justify="left" if heading in ("op", "errors")
                             else "right", no_wrap=heading != "errors")
        for name, stats in [*run["operations"].items(), ("total", run["total"])]:
            table.add_row(
                f"[bold]{name}[/bold]" if name == "total" else name,
                f"{stats['count']:,}",
                _errors_text(stats["errors_by_kind"]),
                number(stats["throughput_rps"], 1),
                *(number(stats[key]) for key in ("mean_ms", "stdev_ms", "p50_ms", "p90_ms",
                                                 "p95_ms", "p99_ms", "p99_9_ms", "max_ms")),
            )
        caption = [f"latency in ms from the {'intended' if run['late'] is not None else 'actual'}"
                   " send time; connection time (pool opened before measuring) "
                   f"{run['connect_s'] * 1000:.0f} ms"]
        if run["late"] is not None:
            caption.append(f"late {run['late']:,}, dropped {run['dropped']:,}")
        if run["skipped"]:
            caption.append(f"skipped {run['skipped']:,}")
        table.caption = "; ".join(caption)
        table.caption_justify = "left"
        tables.append(table)
    return tables


def breakdown_table(document: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title="Where the time goes (ms: p50 / p99 / max)", title_justify="left",
                  box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
    for heading in ("run", "pool wait", "execution", "queue wait", "new conns", "peak use",
                    "loop lag p99", "threads", "CPU"):
        table.add_column(heading, justify="left" if heading == "run" else "right", no_wrap=True)

    def phase(figures: dict[str, Any] | None) -> str:
        if not figures:
            return "–"
        return " / ".join(number(figures[key]) for key in ("p50_ms", "p99_ms", "max_ms"))

    for run in document["runs"]:
        parts = run["breakdown"]
        pool = parts["pool"] or {}
        lag = parts["loop_lag"]
        executor = parts["executor"]
        threads = parts["threads"]
        table.add_row(
            f"{run['mode']} c={run['concurrency']}"
            + (f" r{run['repeat'] + 1}" if document["settings"]["repeat"] > 1 else ""),
            phase(parts["pool_wait"]),
            phase(parts["execution"]),
            phase(parts["queue_wait"]),
            number(pool.get("connections_opened"), 0),
            number(pool.get("peak_in_use"), 0),
            "–" if not lag else number(lag["p99_ms"]),
            str(threads) if threads else
            ("–" if not executor else f"{executor['threads']}"
             + ("" if executor["configured"] else " (default)")),
            f"{parts['cpu_share']:.0%}",
        )
    table.caption = (
        "pool wait = waiting for a pooled connection; execution = the statements and commit "
        "on it; queue wait = open loop only, intended send time to a free worker; new conns = "
        "connections opened during the window (a warm pool opens none); threads = the sync "
        "side's worker threads, or on DM the loop's default executor that dmAsync runs driver "
        "calls on; CPU = the benchmark process's CPU time over wall time"
    )
    table.caption_justify = "left"
    return table


def histogram_panel(document: dict[str, Any], width: int = 40) -> Any:
    """Latency distribution per mode on shared logarithmic buckets, as text bars."""
    from rich.table import Table

    histograms: dict[str, Any] = {}
    for run in document["runs"]:
        histogram = decode_histogram(run["histogram"])
        key = f"{run['mode']} c={run['concurrency']}"
        if key in histograms:
            histograms[key].add(histogram)
        else:
            histograms[key] = histogram
    populated = {k: h for k, h in histograms.items() if h.get_total_count()}
    table = Table(title="Latency distribution (share of requests per bucket)",
                  title_justify="left", box=None)
    if not populated:
        table.add_column("")
        table.add_row("no successful requests")
        return table
    low = min(h.get_min_value() for h in populated.values())
    high = max(h.get_max_value() for h in populated.values())
    edges = _log_edges(max(1, low), max(high, low + 1))
    table.add_column("latency (ms)", justify="right")
    for name in populated:
        table.add_column(name)
    shares = {name: _bucket_shares(h, edges) for name, h in populated.items()}
    for index in range(len(edges) - 1):
        label = f"≤ {edges[index + 1] / 1000:,.2f}"
        cells = []
        for name in populated:
            share = shares[name][index]
            bar = BAR * round(share * width) if share else ""
            cells.append(f"{bar} {share:.0%}" if share >= 0.005 else "")
        table.add_row(label, *cells)
    return table


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
    from rich.table import Table

    table = Table(title=f"{before} → {after}", title_justify="left")
    for heading in ("concurrency", "mode", "metric", "before", "after", "change"):
        table.add_column(heading, justify="right" if heading in ("before", "after", "change")
                         else "left")
    for row in rows:
        change = row["change"]
        text = "–" if change is None else f"{change:+.1%}"
        if row["better"] is True:
            text = f"[green]{text}[/green]"
        elif row["better"] is False:
            text = f"[red]{text}[/red]"
        table.add_row(str(row["concurrency"]), row["mode"], row["metric"],
                      number(row["before"]), number(row["after"]), text)
    return table
