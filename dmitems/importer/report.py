"""What an import tells its caller: progress while it runs, the summary at the end.

Every count a user acts on is a durable one: ``committed`` rows are in the
table whatever happens next, and ``resume_skip_rows`` is the number of input
records that are done (committed, or refused into the rejects file) up to the
last commit: run the same import again with ``--skip-rows`` set to it and the
file completes with no duplicates and no gaps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dmitems.errors import DmitemsError, ValidationFailed

SHOWN_PROBLEMS = 20


@dataclass
class Progress:
    """Where an import stands; handed to the progress callback after each chunk and commit."""

    bytes_read: int
    bytes_total: int | None
    read: int
    inserted: int  # in the open transaction or committed
    committed: int  # durable
    rejected: int
    resume_skip_rows: int  # --skip-rows that resumes after the last commit


@dataclass
class ImportSummary:
    """What an import did.  ``committed`` rows are durable; nothing else is."""

    source: str
    format: str
    mode: str
    method: str
    batch_size: int
    skip_rows: int = 0
    read: int = 0
    inserted: int = 0
    committed: int = 0
    rejected: int = 0
    resume_skip_rows: int = 0
    elapsed: float = 0.0
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    problem_count: int = 0
    outcome: str = "ok"  # ok | invalid | failed | interrupted
    error: str | None = None
    rejects_file: str | None = None

    @property
    def rows_per_second(self) -> float:
        return self.read / self.elapsed if self.elapsed > 0 else 0.0

    def progress(self, bytes_read: int, bytes_total: int | None) -> Progress:
        return Progress(
            bytes_read, bytes_total, self.read, self.inserted, self.committed, self.rejected,
            self.resume_skip_rows,
        )

    def add_problems(self, where: str, problems: Iterable[tuple[str, str]]) -> None:
        for path, reason in problems:
            self.problem_count += 1
            if len(self.problems) < SHOWN_PROBLEMS:
                self.problems.append((where, path, reason))

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "mode": self.mode,
            "method": self.method,
            "batch_size": self.batch_size,
            "skip_rows": self.skip_rows,
            "read": self.read,
            "inserted": self.inserted,
            "committed": self.committed,
            "rejected": self.rejected,
            "resume_skip_rows": self.resume_skip_rows,
            "elapsed_seconds": round(self.elapsed, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "outcome": self.outcome,
            "error": self.error,
            "problems": [
                {"where": where, "field": path, "reason": reason}
                for where, path, reason in self.problems
            ],
            "problem_count": self.problem_count,
            "rejects_file": self.rejects_file,
        }

    @property
    def resumable(self) -> bool:
        """The import stopped part-way and ``--skip-rows resume_skip_rows`` picks it up."""
        return self.outcome != "ok" and self.resume_skip_rows > 0


class ImportAborted(DmitemsError):
    """The import stopped; only ``summary.committed`` rows were written (0 in atomic mode).

    Carries the exit code and HTTP status of the error that stopped it.
    """

    def __init__(self, cause: DmitemsError, summary: ImportSummary) -> None:
        super().__init__(cause.message)
        self.exit_code = cause.exit_code
        self.http_status = cause.http_status
        self.title = cause.title
        self.cause = cause
        self.summary = summary


class InvalidRecords(ValidationFailed):
    """Invalid records without --skip-invalid: nothing more was written."""


def invalid_records(summary: ImportSummary) -> InvalidRecords:
    count, records = summary.problem_count, summary.rejected
    written = (
        f"only the {summary.committed} rows committed before the first one stay"
        if summary.committed
        else "nothing was written"
    )
    return InvalidRecords(
        f"{records} invalid record{'s' if records != 1 else ''} "
        f"({count} problem{'s' if count != 1 else ''}); {written} "
        "(fix them, or use --skip-invalid --rejects FILE)"
    )


def interrupted_message(summary: ImportSummary) -> str:
    if summary.committed:
        return (
            f"interrupted after reading {summary.read} records: {summary.committed} rows were "
            "committed and stay; the uncommitted rest was rolled back"
            + _resume_hint(summary)
        )
    return f"interrupted after reading {summary.read} records: rolled back, nothing was written"


def _resume_hint(summary: ImportSummary) -> str:
    return f"; resume with --skip-rows {summary.resume_skip_rows}" if summary.resumable else ""


def aborted(summary: ImportSummary, error: DmitemsError) -> ImportAborted:
    """The ImportAborted to raise for ``error``, its message saying what stays."""
    summary.inserted = summary.committed
    if summary.outcome == "failed" and not summary.committed:
        error.message += "; nothing was written"
    elif summary.outcome == "failed":
        error.message += f"; {summary.committed} rows committed before it stay"
        error.message += _resume_hint(summary)
    summary.error = error.message
    return ImportAborted(error, summary)
