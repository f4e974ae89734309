"""The commit policy: which chunks are written, and when what was written becomes durable.

* atomic (default): one transaction; after the first invalid record nothing
  more is inserted (the file is still read to the end, to report every
  problem) and the transaction is rolled back;
* skip-invalid: valid rows go in, refused records go to the rejects file;
* commit-every N: a commit after every N inserted rows, at a chunk's end.

The counts follow the commits: ``summary.committed`` grows only once a COMMIT
has returned, and ``summary.resume_skip_rows`` moves with it (see
:mod:`dmitems.importer.report`).  The progress callback runs right after each
commit, so what the CLI shows is what would survive a crash at that moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from dmitems.importer.bulk import insert_values
from dmitems.importer.report import ImportSummary, Progress, invalid_records

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from dmitems.db.base import Backend
    from dmitems.importer.chunks import Chunk
    from dmitems.importer.rejects import RejectsFile
    from dmitems.importer.spec import ImportSpec


class Checkpoints:
    """Writes chunks on one connection and commits them as the spec's policy says.

    The connection autobegins a transaction at the first insert after each
    commit; whoever owns the connection rolls back whatever is left open.
    """

    def __init__(
        self,
        connection: AsyncConnection,
        backend: Backend,
        spec: ImportSpec,
        method: str,
        summary: ImportSummary,
        rejects: RejectsFile | None,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self._connection = connection
        self._backend = backend
        self._spec = spec
        self._method = method
        self._summary = summary
        self._rejects = rejects
        self._on_progress = on_progress
        self._pending = 0  # inserted since the last commit
        self._bytes_read = 0
        self.failed: Chunk | None = None  # the chunk whose insert raised, if one did

    @property
    def _writing(self) -> bool:
        return self._spec.skip_invalid or not self._summary.problem_count

    async def take(self, chunk: Chunk) -> None:
        """Count ``chunk``, refuse its rejects, insert its rows, commit if one is due."""
        summary, where = self._summary, self._spec.source.where
        summary.read += chunk.read
        for position, record, problems in chunk.rejects:
            summary.add_problems(f"{where} {position}", problems)
            if self._rejects is not None:
                self._rejects.write(position, record, problems)
        summary.rejected += len(chunk.rejects)
        if self._writing and chunk.values:
            self.failed = chunk
            await insert_values(self._connection, self._backend, chunk.values, method=self._method)
            self.failed = None
            summary.inserted += len(chunk.values)
            self._pending += len(chunk.values)
        self._bytes_read = chunk.bytes_read
        commit_every = self._spec.commit_every
        if commit_every and self._pending >= commit_every:
            await self.commit()
        self._report()

    async def finish(self) -> None:
        """Commit the rest, or raise InvalidRecords if the policy refuses the file."""
        if self._summary.problem_count and not self._spec.skip_invalid:
            raise invalid_records(self._summary)
        pending = self._pending
        await self.commit()
        if pending:
            self._report()

    async def commit(self) -> None:
        """Commit, and count it; a cancellation meanwhile is raised once it is counted."""
        cancelled = await _see_through(self._connection.commit())
        summary = self._summary
        summary.committed += self._pending
        self._pending = 0
        summary.resume_skip_rows = self._spec.skip_rows + summary.read
        if self._rejects is not None:
            self._rejects.flush()
        if cancelled is not None:
            raise cancelled

    def _report(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self._summary.progress(self._bytes_read, self._spec.source.size))


async def _see_through(awaitable: Awaitable[Any]) -> asyncio.CancelledError | None:
    """Await ``awaitable`` to its end even if the caller is cancelled meanwhile.

    A cancelled ``await connection.commit()`` can still commit (aiosqlite's
    thread, for one, carries on), and the summary would then under-count the
    rows that stay.  So the commit runs to its end, the caller counts it, and
    only then stops: the caller's cancellation, if one came, is returned for
    it to raise.  Raises what ``awaitable`` raised.
    """
    future = asyncio.ensure_future(awaitable)
    cancelled = None
    while True:
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError as error:
            if future.done():
                raise
            cancelled = error
        else:
            return cancelled
