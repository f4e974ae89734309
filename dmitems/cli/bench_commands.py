"""``dmitems bench``: sync vs async latency, at the database or over HTTP; ``bench compare``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from dmitems.cli.output import DmitemsGroup, console, fail, info, print_json, warn
from dmitems.cli.state import run, state_of

if TYPE_CHECKING:
    from dmitems.bench.spec import BenchSpec
    from dmitems.config import Settings

HELP = """\
Benchmark sync against async SQLAlchemy: the same operations, the same statements, the same pool capacity, with honest percentiles (HdrHistogram).

With no options it benchmarks the configured database (or the SQLite default) for about 25 s and prints the tables. It only touches rows it creates, and removes them at the end.

Examples:

  dmitems bench --concurrency 100

  dmitems bench --concurrency 10,50,100 --duration 5s --json result.json

  dmitems bench --pool-size 5,10,20,40 --concurrency 100 --repeat 3

  dmitems bench --target http --rate 500 --arrival poisson --fail-if "p99>200ms"

  dmitems bench compare before.json after.json
"""

app = typer.Typer(
    cls=DmitemsGroup,
    help=HELP,
    invoke_without_command=True,
    rich_markup_mode="rich",
)

Text = Optional[str]

# The options, declared once here so that the command itself stays a list of names.
Target = Annotated[str, typer.Option(
    "--target", "-t", help="db: drive the database directly; http: drive `dmitems serve` "
    "(started here, or --url).")]
Mode = Annotated[str, typer.Option("--mode", "-m", help="sync, async or both (interleaved).")]
Concurrency = Annotated[Text, typer.Option(
    "--concurrency", "-c", help="Requests in flight, or a list to sweep such as 10,50,100. "
    "Default: the pool capacity.", show_default=False)]
Duration = Annotated[Text, typer.Option(
    "--duration", "-d", help="Measured window per run, e.g. 10s, 1m. Default 10s (or none "
    "with --requests).", show_default=False)]
Requests = Annotated[Optional[int], typer.Option(
    "--requests", "-n", help="Requests per run (ends the run when reached).", show_default=False)]
Warmup = Annotated[str, typer.Option("--warmup", help="Load before measuring, discarded.")]
Rate = Annotated[Optional[float], typer.Option(
    "--rate", "-r", help="Open loop: requests per second; latency counts from the intended "
    "send time.", show_default=False)]
Arrival = Annotated[str, typer.Option("--arrival", help="With --rate: constant or poisson gaps.")]
Mix = Annotated[Text, typer.Option(
    "--mix", help="Operation weights. Default get=70,list=10,create=10,update=5,delete=5 "
    "(http also: livez).", show_default=False)]
Repeat = Annotated[int, typer.Option(
    "--repeat", help="Runs per mode and level, interleaved; the tables show the median and "
    "spread.")]
Processes = Annotated[int, typer.Option(
    "--processes", "-p", help="Split the load over this many processes.")]
Client = Annotated[str, typer.Option(
    "--client", help="concurrent, or sequential: the article's 100 sequential vs 100 "
    "concurrent requests (client concurrency only).")]
ServerUrl = Annotated[Text, typer.Option(
    "--url", help="With --target http: a running server to drive instead of starting two.",
    show_default=False)]
PoolSize = Annotated[Text, typer.Option(
    "--pool-size", help="Override database pool_size (both modes), or a list to sweep such "
    "as 5,10,20,40: then the run ends with a recommended pool size per mode.",
    show_default=False)]
MaxOverflow = Annotated[Optional[int], typer.Option(
    "--max-overflow", help="Override database max_overflow (both modes).", show_default=False)]
PoolQueue = Annotated[Text, typer.Option(
    "--pool-queue", help="fifo: a freed connection goes to the longest waiter, in both modes "
    "(dmitems' line); native: each pool's own behaviour, newcomers may barge in. Default: "
    "the pool_queue setting (fifo).", show_default=False)]
Timeout = Annotated[float, typer.Option(
    "--timeout", help="Seconds before one request counts as failed.")]
JsonFile = Annotated[Optional[Path], typer.Option(
    "--json", help="Write the results (versioned schema) to this file; - for stdout.",
    show_default=False)]
Plot = Annotated[Optional[Path], typer.Option(
    "--plot", help="Write latency CDFs to FILE.html (plotly) or FILE.png (matplotlib).",
    show_default=False)]
FailIf = Annotated[Optional[list[str]], typer.Option(
    "--fail-if", metavar="CONDITION", help="Exit 7 if this holds, e.g. \"p99>200ms\", "
    "\"async/sync<1.0\". Repeatable.", show_default=False)]
Keep = Annotated[bool, typer.Option("--keep", help="Leave the benchmark's rows in the database.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No live view or progress lines.")]


@dataclass
class BenchOptions:
    """The command line as given, before it is checked and turned into a BenchSpec."""

    target: str
    mode: str
    concurrency: str | None
    duration: str | None
    requests: int | None
    warmup: str
    rate: float | None
    arrival: str
    mix: str | None
    repeat: int
    processes: int
    client: str
    url: str | None
    pool_size: str | None
    max_overflow: int | None
    pool_queue: str | None
    timeout: float
    json_file: Path | None
    plot: Path | None
    fail_if: list[str]
    keep: bool
    quiet: bool


@app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context, target: Target = "db", mode: Mode = "both",
    concurrency: Concurrency = None, duration: Duration = None, requests: Requests = None,
    warmup: Warmup = "2s", rate: Rate = None, arrival: Arrival = "constant", mix: Mix = None,
    repeat: Repeat = 1, processes: Processes = 1, client: Client = "concurrent",
    server_url: ServerUrl = None, pool_size: PoolSize = None, max_overflow: MaxOverflow = None,
    pool_queue: PoolQueue = None, timeout: Timeout = 30.0, json_file: JsonFile = None,
    plot: Plot = None, fail_if: FailIf = None, keep: Keep = False, quiet: Quiet = False,
) -> None:
    """Run the benchmark. Example: dmitems bench --concurrency 100"""
    if ctx.invoked_subcommand is not None:
        return
    _run(ctx, BenchOptions(
        target=target, mode=mode, concurrency=concurrency, duration=duration,
        requests=requests, warmup=warmup, rate=rate, arrival=arrival, mix=mix, repeat=repeat,
        processes=processes, client=client, url=server_url, pool_size=pool_size,
        max_overflow=max_overflow, pool_queue=pool_queue, timeout=timeout,
        json_file=json_file, plot=plot, fail_if=fail_if or [], keep=keep, quiet=quiet,
    ))


def _run(ctx: typer.Context, options: BenchOptions) -> None:
    """Check everything, run, then write and print the results and the verdicts."""
    from dmitems.bench import thresholds
    from dmitems.bench.live import LiveView
    from dmitems.bench.plot import check_plot_path, write_plot
    from dmitems.bench.runner import run_benchmark
    from dmitems.bench.spec import parse_pool_sizes

    state = state_of(ctx)
    pool_sizes = parse_pool_sizes(options.pool_size) if options.pool_size else None
    if options.pool_queue not in (None, "fifo", "native"):
        from dmitems.errors import InvalidInput

        raise InvalidInput(f"--pool-queue '{options.pool_queue}' must be fifo or native")
    settings = state.settings(
        database_pool_size=pool_sizes[0] if pool_sizes else None,
        database_max_overflow=options.max_overflow,
        database_pool_queue=options.pool_queue,
    )
    spec = build_spec(settings, options, pool_sizes)
    checks = [thresholds.parse(text, spec.run_modes, tuple(spec.mix)) for text in options.fail_if]
    if options.plot is not None:
        check_plot_path(options.plot)
    to_stdout = options.json_file is not None and str(options.json_file) == "-"
    errors = console(stderr=True)
    observer = LiveView(errors, live=errors.is_terminal, quiet=options.quiet)
    try:
        document = run(run_benchmark(spec, settings, state.config_path, observer))
    finally:
        observer.close()
    document["thresholds"] = [thresholds.evaluate(check, document["runs"]) for check in checks]
    if options.json_file is not None:
        write_document(document, options.json_file, settings)
    if options.plot is not None:
        write_plot(document, options.plot)
        info(f"plot written to {options.plot}")
    _show(console(stderr=to_stdout), document)
    _verdicts(document)


def _show(out: Any, document: dict[str, Any]) -> None:
    from dmitems.bench.report import render, thresholds_lines

    render(out, document)
    for text in document["warnings"]:
        warn(text)
    thresholds_lines(out, document["thresholds"])
    info(cleanup_message(document["cleanup"]))


def _verdicts(document: dict[str, Any]) -> None:
    """Exit 3 when a mode had no success at all, 7 when a --fail-if condition holds."""
    failed_modes = [
        f"{run['mode']} at concurrency {run['concurrency']}"
        for run in document["runs"] if run["total"]["ok"] == 0
    ]
    if failed_modes:
        kinds = sorted({k for run in document["runs"] for k in run["total"]["errors_by_kind"]})
        fail(f"no request succeeded for {', '.join(failed_modes)} "
             f"(errors: {', '.join(kinds) or 'none'})", 3)
    broken = [check for check in document["thresholds"] if check["broken"]]
    if broken:
        fail("threshold broken: " + "; ".join(
            f"{check['expression']} ({check['where'][0]})" for check in broken), 7)


def build_spec(
    settings: Settings, options: BenchOptions, pool_sizes: list[int] | None = None
) -> BenchSpec:
    """The benchmark asked for, with defaults filled from the settings."""
    from dmitems.bench.spec import (
        DB_OPERATIONS, DEFAULT_MIX, HTTP_OPERATIONS, MODES, BenchSpec, parse_duration,
        parse_levels, parse_mix,
    )
    from dmitems.errors import InvalidInput

    target, mode, client = options.target, options.mode, options.client
    if target not in ("db", "http"):
        raise InvalidInput(f"--target '{target}' must be db or http")
    if mode not in ("sync", "async", "both"):
        raise InvalidInput(f"--mode '{mode}' must be sync, async or both")
    if client not in ("concurrent", "sequential"):
        raise InvalidInput(f"--client '{client}' must be concurrent or sequential")
    if options.arrival not in ("constant", "poisson"):
        raise InvalidInput(f"--arrival '{options.arrival}' must be constant or poisson")
    modes: tuple[str, ...] = MODES if mode == "both" else (mode,)
    if options.url is not None and mode == "both":
        modes = ("server",)  # one server of unknown mode
    article = client == "sequential"
    requests = options.requests
    duration = parse_duration(options.duration) if options.duration else None
    if duration is None and requests is None:
        requests, duration = (100, None) if article else (None, 10.0)
    default_level = "100" if article else str(settings.pool_capacity)
    allowed = HTTP_OPERATIONS if target == "http" else DB_OPERATIONS
    return BenchSpec(
        target=target, modes=modes, levels=parse_levels(options.concurrency or default_level),
        duration=duration, requests=requests,
        warmup=parse_duration(options.warmup, "--warmup"), rate=options.rate,
        arrival=options.arrival,  # type: ignore[arg-type]  # checked above
        mix=parse_mix(options.mix or DEFAULT_MIX, allowed), repeat=options.repeat,
        processes=options.processes, client=client,  # type: ignore[arg-type]
        url=options.url, keep=options.keep, request_timeout=options.timeout,
        pool_sizes=pool_sizes or [settings.database_pool_size],
    )


def write_document(document: dict[str, Any], path: Path, settings: Settings) -> None:
    import orjson

    data = orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
    data = settings.redact(data.decode()).encode()
    if str(path) == "-":
        import sys

        sys.stdout.write(data.decode())
        sys.stdout.flush()
        return
    from dmitems.errors import InvalidInput

    try:
        path.write_bytes(data)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from None


def cleanup_message(cleanup: dict[str, Any]) -> str:
    prefix, created = cleanup["prefix"], cleanup.get("created", 0)
    deleted = cleanup.get("deleted_during_run", 0)
    head = f"bench rows (named {prefix}*): created {created:,}, deleted {deleted:,} during the runs"
    if cleanup.get("kept"):
        return f"{head}; kept the rest (--keep)"
    removed = cleanup.get("removed_at_end")
    if removed is None:
        return f"{head}; not removed (the run stopped early)"
    how = "in one DELETE by name prefix" if cleanup.get("method") == "database" else "over HTTP"
    return f"{head}; removed the remaining {removed:,} {how}. No other rows were changed."


@app.command("compare")
def compare(
    before: Annotated[Path, typer.Argument(help="Earlier result (from --json).")],
    after: Annotated[Path, typer.Argument(help="Later result (from --json).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Print the change in each figure between two result files.

    Example: dmitems bench compare before.json after.json
    """
    from dmitems.bench.advice_report import advice_compare_table
    from dmitems.bench.report import compare_table
    from dmitems.bench.results import compare as compare_documents
    from dmitems.bench.results import compare_advice, read_document

    earlier, later = read_document(before), read_document(after)
    rows, advice = compare_documents(earlier, later), compare_advice(earlier, later)
    if as_json:
        print_json({"before": str(before), "after": str(after), "rows": rows, "advice": advice})
        return
    if not rows:
        fail(f"{before} and {after} share no concurrency level and mode to compare", 2)
    console().print(compare_table(rows, str(before), str(after)))
    if advice:
        console().print(advice_compare_table(advice))
