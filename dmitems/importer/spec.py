"""What to import and how: the CLI's options as one value, checked when it is made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dmitems.errors import InvalidInput
from dmitems.importer.bulk import METHODS

if TYPE_CHECKING:
    from dmitems.formats import Source

# Chosen by measurement (benchmarks/import_bench.py --batch-sizes 1000,5000,10000,20000):
# 1,000-row chunks cost COPY round trips; from 5,000 to 20,000 rows/s stays within
# noise on both backends while peak RSS grows (75 → 110 MB for 1M rows).
DEFAULT_BATCH_SIZE = 10_000


@dataclass
class ImportSpec:
    """One import: the open ``source`` and every option ``import_records`` needs.

    * ``skip_invalid`` (with ``rejects``): valid records go in, refused ones go
      to the rejects file; otherwise any invalid record stops the writing;
    * ``commit_every``: a commit after every N inserted rows (at chunk ends);
      otherwise one transaction for the whole file;
    * ``skip_rows``: pass over the first N records of the input unvalidated,
      to resume an import that stopped (its summary gives N).
    """

    source: Source
    batch_size: int = DEFAULT_BATCH_SIZE
    method: str = "auto"
    skip_invalid: bool = False
    commit_every: int | None = None
    rejects: Path | None = None
    skip_rows: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InvalidInput("--batch-size must be at least 1")
        if self.commit_every is not None and self.commit_every < 1:
            raise InvalidInput("--commit-every must be at least 1")
        if self.skip_rows < 0:
            raise InvalidInput("--skip-rows must be 0 or more")
        if self.method not in METHODS:
            raise InvalidInput(f"unknown insert method '{self.method}'; use one of {', '.join(METHODS)}")
        if self.skip_invalid and self.rejects is None:
            raise InvalidInput("--skip-invalid needs --rejects FILE, so no record is lost")
        if self.rejects is not None and not self.skip_invalid:
            raise InvalidInput("--rejects only applies with --skip-invalid")

    @property
    def mode(self) -> str:
        if self.commit_every:
            return "commit-every"
        return "skip-invalid" if self.skip_invalid else "atomic"

    @property
    def chunk_size(self) -> int:
        """Records per chunk: a commit point never falls inside a chunk."""
        return min(self.batch_size, self.commit_every or self.batch_size)
