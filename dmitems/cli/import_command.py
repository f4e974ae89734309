"""``dmitems item import``: options, progress that counts durable rows, the summary, the resume.

A thin adapter over :func:`dmitems.importer.import_records`: it builds the
ImportSpec, draws progress from the callback and prints the summary (and, for
a stopped ``--commit-every`` import, the command that resumes it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from dmitems.cli.bulk_commands import (
    BATCH_SIZE,
    EncodingOption,
    FormatOption,
    JsonOption,
    QuietOption,
    progress_bar,
)
from dmitems.cli.output import console, info, print_json, warn
from dmitems.cli.state import with_database

if TYPE_CHECKING:
    from rich.progress import Progress as Bar

    from dmitems.db import Database
    from dmitems.importer import ImportSpec, ImportSummary, Progress


def _import_progress(
    bar: Bar | None, total: int | None, checkpoints: bool
) -> Callable[[Progress], None] | None:
    """Draw the bar; without one (not a terminal), print a line per commit if ``checkpoints``
    (commit-every mode).

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
        if checkpoints:
            status += f" · resume: --skip-rows {progress.resume_skip_rows}"
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
        with progress_bar(quiet or as_json, by_bytes=source.size is not None) as bar:
            checkpoints = bool(spec.commit_every) and not quiet
            display = _import_progress(bar, source.size, checkpoints)
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
