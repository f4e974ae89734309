"""The live view while a benchmark runs: a rich panel refreshed each second, or plain lines."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dmitems.bench.report import number

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from dmitems.bench.recorder import Recorder
    from dmitems.bench.spec import RunPlan


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
            f"{plan.mode:>10} c={plan.concurrency:<5} pool {plan.pool_size:<4} "
            f"repeat {plan.repeat + 1}: "
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
