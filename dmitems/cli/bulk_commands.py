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
    from dmitems.importer import ImportSummary, Progress

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


def _import_progress(bar: Bar | None, total: int | None) -> Callable[[Progress], None] | None:
    if bar is None:
        return None
    task = bar.add_task("importing", total=total, status="")

    def update(progress: Progress) -> None:
        elapsed = bar.tasks[task].elapsed or 0.0
        speed = progress.read / elapsed if elapsed > 0 else 0.0
        status = (
            f"{progress.inserted:,} inserted · {progress.rejected:,} rejected · "
            f"{speed:,.0f} rows/s"
        )
        if total is None:  # stdin: no size to measure against, so count rows
            status = f"{progress.read:,} read · {status}"
        completed = progress.bytes_read if total is not None else progress.read
        bar.update(task, completed=completed, status=status)

    return update


# -- import ------------------------------------------------------------------


def _show_summary(summary: ImportSummary, as_json: bool) -> None:
    if as_json:
        print_json(summary.as_dict())
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
    table.add_row("read", f"{summary.read:,}")
    table.add_row("inserted", f"{summary.inserted:,}")
    table.add_row("rejected", f"{summary.rejected:,}")
    table.add_row("elapsed", f"{summary.elapsed:.2f} s")
    table.add_row("rows/s", f"{summary.rows_per_second:,.0f}")
    table.add_row("mode", f"{summary.mode}, {summary.method}, batches of {summary.batch_size:,}")
    console().print(table)


def import_(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE|-", help="File to read, or - for stdin.")],
    fmt: FormatOption = None,
    encoding: EncodingOption = "utf-8",
    ignore_extra: Annotated[
        bool, typer.Option("--ignore-extra", help="Skip unknown columns/keys instead of failing.")
    ] = False,
    skip_invalid: Annotated[
        bool,
        typer.Option("--skip-invalid", help="Insert the valid records; write the others to --rejects."),
    ] = False,
    rejects: Annotated[
        Optional[Path],
        typer.Option("--rejects", help="JSON Lines file for refused records and their reasons.",
                     dir_okay=False, show_default=False),
    ] = None,
    commit_every: Annotated[
        Optional[int],
        typer.Option("--commit-every", min=1, help="Commit after every N rows (for huge loads).",
                     show_default=False),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Records per insert round trip.")
    ] = 10_000,
    method: Annotated[
        str, typer.Option("--method", help="auto (COPY on PostgreSQL), insert or copy.")
    ] = "auto",
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Import items from CSV, a JSON array or JSON Lines; all or nothing by default.

    Any invalid record means nothing is written (exit 2), unless --skip-invalid.

    Example: dmitems item import items.csv --encoding gbk
    """
    from dmitems.formats import open_source
    from dmitems.importer import ImportAborted, ImportOptions, import_records

    options = ImportOptions(
        batch_size=batch_size,
        method=method,
        skip_invalid=skip_invalid,
        commit_every=commit_every,
        rejects=rejects,
    )
    source = open_source(file, fmt, encoding, ignore_extra)

    async def work(database: Database) -> ImportSummary:
        with _progress_bar(quiet or as_json, by_bytes=source.size is not None) as bar:
            return await import_records(
                database, source, options, _import_progress(bar, source.size)
            )

    try:
        summary = with_database(ctx, work)
    except ImportAborted as aborted:
        _show_summary(aborted.summary, as_json)
        raise aborted.cause from None
    _show_summary(summary, as_json)
    if summary.rejected and not as_json:
        warn(f"{summary.rejected:,} records rejected; see {summary.rejects_file}")


# -- export ------------------------------------------------------------------


def export(
    ctx: typer.Context,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="csv, json or jsonl.")
    ] = "csv",
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="File to write (default: stdout).", dir_okay=False,
                     show_default=False),
    ] = None,
    where_name: Annotated[
        Optional[str],
        typer.Option("--where-name", help="Only items whose name contains this text.",
                     show_default=False),
    ] = None,
    limit: Annotated[
        Optional[int], typer.Option("--limit", min=1, help="At most N items.", show_default=False)
    ] = None,
    encoding: Annotated[
        str, typer.Option("--encoding", help="utf-8, utf-8-sig (BOM, for Excel) or gbk.")
    ] = "utf-8",
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Export items (name, description, price) in id order; re-importable as is.

    Written to a temporary file and renamed, so a failure never leaves half a file.

    Example: dmitems item export -o items.csv --where-name 键盘
    """
    from dmitems.formats import RecordWriter, atomic_output, format_for

    chosen = format_for(None, fmt)
    to_file = output is not None and str(output) != "-"

    async def work(database: Database) -> int:
        from dmitems.exporter import count_matching, export_items

        with atomic_output(output, encoding) as stream:
            writer = RecordWriter(stream, chosen)
            with _progress_bar(quiet or not to_file, by_rows=True) as bar:
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

    written = with_database(ctx, work)
    if as_json:
        if not to_file:
            fail("--json needs -o FILE (stdout carries the data)", 2)
        print_json({"exported": written, "format": chosen, "output": str(output)})
    elif to_file:
        success(f"exported {written:,} items to {output}")
    else:
        info(f"exported {written:,} items")


# -- generate ----------------------------------------------------------------


def generate(
    count: Annotated[int, typer.Argument(metavar="N", min=0, help="How many items.")],
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="File to write (default: stdout).", dir_okay=False,
                     show_default=False),
    ] = None,
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

