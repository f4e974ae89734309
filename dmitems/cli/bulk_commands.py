"""``dmitems item import|export|generate``: bulk loading, dumping and test data.

Thin adapters: the work is in :mod:`dmitems.importer`, :mod:`dmitems.exporter`
and :mod:`dmitems.datagen`; this module parses options, draws progress on
stderr and prints the summary.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from dmitems.cli.output import console, fail, info, print_json, success, warn
from dmitems.cli.state import with_database

if TYPE_CHECKING:
    from rich.progress import Progress as Bar

    from dmitems.db import Database
    from dmitems.importer import ImportSpec, ImportSummary, Progress

FormatOption = Annotated[
    Optional[str],
    typer.Option(
        "--format", "-f", help="csv, json or jsonl. Default: from the file suffix (needed for -).",
        show_default=False,
    ),
]
EncodingOption = Annotated[
    str, typer.Option("--encoding", help="Text encoding, e.g. utf-8 (BOM handled) or gbk.")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
BATCH_SIZE = 10_000  # dmitems.importer.DEFAULT_BATCH_SIZE (a test checks), without importing it


def register(app: typer.Typer) -> None:
    """Add the bulk commands to the ``item`` group."""
    app.command("import")(import_)
    app.command("export")(export)
    app.command("generate")(generate)


# -- progress ----------------------------------------------------------------


@contextlib.contextmanager
def _progress_bar(quiet: bool, by_bytes: bool = False, by_rows: bool = False) -> Iterator[Bar | None]:
    """A rich progress bar on stderr, or None when quiet or stderr is not a terminal."""
    out = console(stderr=True)
    if quiet or not out.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
    if by_bytes:
        columns += [BarColumn(bar_width=24), DownloadColumn(), TimeRemainingColumn()]
    elif by_rows:
        columns += [BarColumn(bar_width=24), MofNCompleteColumn(), TimeRemainingColumn()]
    columns.append(TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=out, transient=True) as bar:
        yield bar


def _import_progress(
    bar: Bar | None, total: int | None, checkpoints: bool
) -> Callable[[Progress], None] | None:
    """Draw the bar; without one (not a terminal), print a line per commit if ``checkpoints``.

    Both count what is durable: committed rows, and the ``--skip-rows`` that
    resumes after the last commit.
    """
    if bar is None:
        return _checkpoint_lines() if checkpoints else None
    task = bar.add_task("importing", total=total, status="")

    def update(progress: Progress) -> None:
        elapsed = bar.tasks[task].elapsed or 0.0
        speed = progress.read / elapsed if elapsed > 0 else 0.0
        pending = progress.inserted - progress.committed
        status = (
            f"{progress.committed:,} committed · {pending:,} pending · "
            f"{progress.rejected:,} rejected · {speed:,.0f} rows/s"
        )
        if total is None:  # stdin: no size to measure against, so count rows
            status = f"{progress.read:,} read · {status}"
        completed = progress.bytes_read if total is not None else progress.read
        bar.update(task, completed=completed, status=status)

    return update


def _checkpoint_lines() -> Callable[[Progress], None]:
    shown = [0]

    def update(progress: Progress) -> None:
        if progress.committed > shown[0]:
            shown[0] = progress.committed
            info(
                f"committed {progress.committed:,} rows "
                f"(resume with --skip-rows {progress.resume_skip_rows})"
            )

    return update


# -- import ------------------------------------------------------------------


def _show_summary(summary: ImportSummary, as_json: bool, resume: str | None = None) -> None:
    if as_json:
        print_json({**summary.as_dict(), "resume_command": resume})
        return
    out = console(stderr=True)
    for where, path, reason in summary.problems:
        out.print(f"  {where}: {path}: {reason}", markup=False, soft_wrap=True)
    if summary.problem_count > len(summary.problems):
        out.print(f"  … and {summary.problem_count - len(summary.problems)} more problems")
    from rich.table import Table

    table = Table(title="import summary", title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    if summary.skip_rows:
        table.add_row("skipped", f"{summary.skip_rows:,}")
    table.add_row("read", f"{summary.read:,}")
    table.add_row("committed", f"{summary.committed:,}")
    table.add_row("rejected", f"{summary.rejected:,}")
    table.add_row("elapsed", f"{summary.elapsed:.2f} s")
    table.add_row("rows/s", f"{summary.rows_per_second:,.0f}")
    table.add_row("mode", f"{summary.mode}, {summary.method}, batches of {summary.batch_size:,}")
    console().print(table)
    if resume is not None:
        console().print(f"to resume: {resume}", markup=False, soft_wrap=True)


FileArgument = Annotated[str, typer.Argument(metavar="FILE|-", help="File to read, or - for stdin.")]
IgnoreExtraOption = Annotated[
    bool, typer.Option("--ignore-extra", help="Skip unknown columns/keys instead of failing.")
]
SkipInvalidOption = Annotated[
    bool, typer.Option("--skip-invalid", help="Insert the valid records; write the others to --rejects.")
]
RejectsOption = Annotated[
    Optional[Path],
    typer.Option("--rejects", help="JSON Lines file for refused records and their reasons.",
                 dir_okay=False, show_default=False),
]
CommitEveryOption = Annotated[
    Optional[int],
    typer.Option("--commit-every", min=1, help="Commit after every N rows (for huge loads).",
                 show_default=False),
]
SkipRowsOption = Annotated[
    int,
    typer.Option("--skip-rows", min=0, help="Pass over the first N records (data rows, not the "
                 "header): resumes an import that stopped; its summary prints N."),
]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", min=1, help="Records per insert round trip.")]
MethodOption = Annotated[str, typer.Option("--method", help="auto (COPY on PostgreSQL), insert or copy.")]


def import_(
    ctx: typer.Context,
    file: FileArgument,
    fmt: FormatOption = None,
    encoding: EncodingOption = "utf-8",
    ignore_extra: IgnoreExtraOption = False,
    skip_invalid: SkipInvalidOption = False,
    rejects: RejectsOption = None,
    commit_every: CommitEveryOption = None,
    skip_rows: SkipRowsOption = 0,
    batch_size: BatchSizeOption = BATCH_SIZE,
    method: MethodOption = "auto",
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Import items from CSV, a JSON array or JSON Lines; all or nothing by default.

    Any invalid record means nothing is written (exit 2), unless --skip-invalid.
    With --commit-every, a stopped import prints the --skip-rows that resumes it.

    Example: dmitems item import items.csv --encoding gbk
    """
    from dmitems.formats import open_source
    from dmitems.importer import ImportSpec

    spec = ImportSpec(
        source=open_source(file, fmt, encoding, ignore_extra),
        batch_size=batch_size,
        method=method,
        skip_invalid=skip_invalid,
        commit_every=commit_every,
        rejects=rejects,
        skip_rows=skip_rows,
    )
    repeat = [file] + [
        word for flag, value in (("--format", fmt), ("--encoding", encoding))
        if value is not None and value != "utf-8" for word in (flag, value)
    ] + (["--ignore-extra"] if ignore_extra else [])
    _run_import(ctx, spec, repeat, quiet=quiet, as_json=as_json)


def _run_import(
    ctx: typer.Context, spec: ImportSpec, repeat: list[str], *, quiet: bool, as_json: bool
) -> None:
    """Run the import with its progress display, then print the summary (and the resume)."""
    from dmitems.importer import ImportAborted, import_records

    source = spec.source

    async def work(database: Database) -> ImportSummary:
        with _progress_bar(quiet or as_json, by_bytes=source.size is not None) as bar:
            display = _import_progress(bar, source.size, bool(spec.commit_every) and not quiet)
            return await import_records(database, spec, display)

    try:
        summary = with_database(ctx, work)
    except ImportAborted as aborted:
        resumable = aborted.summary.resumable
        resume = _resume_command(ctx, spec, repeat, aborted.summary) if resumable else None
        _show_summary(aborted.summary, as_json, resume)
        raise aborted.cause from None
    _show_summary(summary, as_json)
    if summary.rejected and not as_json:
        warn(f"{summary.rejected:,} records rejected; see {summary.rejects_file}")


def _resume_command(
    ctx: typer.Context, spec: ImportSpec, repeat: list[str], summary: ImportSummary
) -> str:
    """The command that picks a stopped import up after its last commit.

    The connection options are repeated as given, except a password, which is
    masked.  The rejects go to a new file, so the stopped run's stay as they are.
    """
    import shlex

    from dmitems.cli.state import state_of
    from dmitems.config import mask_url

    state = state_of(ctx)
    words = ["dmitems"]
    if state.config_path is not None:
        words += ["--config", str(state.config_path)]
    if state.url is not None:
        words += ["--url", mask_url(state.url)]
    words += ["item", "import", *repeat]
    skip = summary.resume_skip_rows
    if spec.skip_invalid and spec.rejects is not None:
        rejects = spec.rejects.with_name(f"{spec.rejects.stem}.from-{skip}{spec.rejects.suffix}")
        words += ["--skip-invalid", "--rejects", str(rejects)]
    if spec.commit_every:
        words += ["--commit-every", str(spec.commit_every)]
    if spec.batch_size != BATCH_SIZE:
        words += ["--batch-size", str(spec.batch_size)]
    if spec.method != "auto":
        words += ["--method", spec.method]
    words += ["--skip-rows", str(skip)]
    return shlex.join(words)


# -- export ------------------------------------------------------------------


OutputOption = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="File to write (default: stdout).", dir_okay=False,
                 show_default=False),
]
WhereNameOption = Annotated[
    Optional[str],
    typer.Option("--where-name", help="Only items whose name contains this text.", show_default=False),
]
LimitOption = Annotated[
    Optional[int], typer.Option("--limit", min=1, help="At most N items.", show_default=False)
]
ExportEncodingOption = Annotated[
    str, typer.Option("--encoding", help="utf-8, utf-8-sig (BOM, for Excel) or gbk.")
]


def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, json or jsonl.")] = "csv",
    output: OutputOption = None,
    where_name: WhereNameOption = None,
    limit: LimitOption = None,
    encoding: ExportEncodingOption = "utf-8",
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Export items (name, description, price) in id order; re-importable as is.

    Written to a temporary file and renamed, so a failure never leaves half a file.

    Example: dmitems item export -o items.csv --where-name 键盘
    """
    from dmitems.formats import format_for

    chosen = format_for(None, fmt)
    to_file = output is not None and str(output) != "-"
    if as_json and not to_file:
        fail("--json needs -o FILE (stdout carries the data)", 2)

    async def work(database: Database) -> int:
        show = to_file and not quiet
        return await _export(database, chosen, output, encoding, where_name, limit, show)

    written = with_database(ctx, work)
    if as_json:
        print_json({"exported": written, "format": chosen, "output": str(output)})
    elif to_file:
        success(f"exported {written:,} items to {output}")
    else:
        info(f"exported {written:,} items")


async def _export(
    database: Database,
    fmt: str,
    output: Path | None,
    encoding: str,
    where_name: str | None,
    limit: int | None,
    show_progress: bool,
) -> int:
    """Write the matching items to ``output``, with a progress bar if ``show_progress``."""
    from dmitems.exporter import count_matching, export_items
    from dmitems.formats import RecordWriter, atomic_output

    with atomic_output(output, encoding) as stream:
        writer = RecordWriter(stream, fmt)
        with _progress_bar(not show_progress, by_rows=True) as bar:
            update = None
            if bar is not None:
                total = await count_matching(database, where_name)
                task = bar.add_task("exporting", total=min(total, limit or total), status="")

                def update(done: int) -> None:
                    bar.update(task, completed=done)

            written = await export_items(
                database, writer, name_contains=where_name, limit=limit, on_progress=update
            )
        writer.close()
    return written


# -- generate ----------------------------------------------------------------


def generate(
    count: Annotated[int, typer.Argument(metavar="N", min=0, help="How many items.")],
    output: OutputOption = None,
    fmt: FormatOption = None,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same data.")] = 0,
    quiet: QuietOption = False,
) -> None:
    """Write N realistic test items (Chinese and English names, prices, descriptions).

    Example: dmitems item generate 1000000 -o items.csv --seed 42
    """
    from dmitems.datagen import generate_items
    from dmitems.formats import RecordWriter, atomic_output, format_for

    to_file = output is not None and str(output) != "-"
    chosen = format_for(output if to_file else None, fmt or ("jsonl" if not to_file else None))
    with atomic_output(output) as stream, _progress_bar(quiet or not to_file, by_rows=True) as bar:
        writer = RecordWriter(stream, chosen)
        task = bar.add_task("generating", total=count, status="") if bar is not None else None
        for done, record in enumerate(generate_items(count, seed), 1):
            writer.write(record)
            if bar is not None and done % 10000 == 0:
                bar.update(task, completed=done)  # type: ignore[arg-type]
        writer.close()
    if to_file:
        success(f"wrote {count:,} items to {output} ({chosen}, seed {seed})")

