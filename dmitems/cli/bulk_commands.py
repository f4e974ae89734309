"""``dmitems item import|export|generate``: bulk loading, dumping and test data.

Thin adapters: the work is in :mod:`dmitems.importer`, :mod:`dmitems.exporter`
and :mod:`dmitems.datagen`; this module parses options, draws progress on
stderr and prints results.  ``item import`` lives in
:mod:`dmitems.cli.import_command`; the options and progress bar all three
share live here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from dmitems.cli.output import console, fail, info, print_json, success
from dmitems.cli.state import with_database

if TYPE_CHECKING:
    from rich.progress import Progress as Bar

    from dmitems.db import Database

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
    from dmitems.cli.import_command import import_

    app.command("import")(import_)
    app.command("export")(export)
    app.command("generate")(generate)


# -- progress ----------------------------------------------------------------


@contextlib.contextmanager
def progress_bar(quiet: bool, by_bytes: bool = False, by_rows: bool = False) -> Iterator[Bar | None]:
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
        with progress_bar(not show_progress, by_rows=True) as bar:
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
    with atomic_output(output) as stream, progress_bar(quiet or not to_file, by_rows=True) as bar:
        writer = RecordWriter(stream, chosen)
        task = bar.add_task("generating", total=count, status="") if bar is not None else None
        for done, record in enumerate(generate_items(count, seed), 1):
            writer.write(record)
            if bar is not None and done % 10000 == 0:
                bar.update(task, completed=done)  # type: ignore[arg-type]
        writer.close()
    if to_file:
        success(f"wrote {count:,} items to {output} ({chosen}, seed {seed})")

