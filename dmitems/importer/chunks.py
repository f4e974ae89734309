"""Read → validate → chunk: a source's records as validated chunks, read ahead on a thread.

:func:`validated_chunks` is a generator, so memory holds one chunk (plus the
``ahead`` chunks the :class:`Feed` queues) at any file size.  Records the
reader could not parse and records validation refuses travel with their chunk
as rejects, with their position in the input, for the commit policy to judge.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from dmitems.errors import InvalidInput
from dmitems.importer.validation import Values, validate_columns, validate_values

if TYPE_CHECKING:
    from dmitems.formats import Source

Reject = tuple[int, Any, list[tuple[str, str]]]
"""(position in the input, the record as read, its (field, reason) problems)."""


@dataclass
class Chunk:
    """One batch of records, validated: the rows to insert and the records refused."""

    values: list[Values]
    positions: list[int]  # position of each row in the input, for database errors
    rejects: list[Reject]
    read: int  # records this chunk took from the input (rows + rejects)
    bytes_read: int


def skip_records(records: Iterator[Any], count: int, source: Source) -> None:
    """Pass over the first ``count`` records unvalidated (``--skip-rows``, to resume an import)."""
    skipped = sum(1 for _ in islice(records, count))
    source.unreadable = 0
    if skipped < count:
        raise InvalidInput(
            f"--skip-rows {count}, but {source.label} holds only {skipped} records"
        )


def validated_chunks(source: Source, batch_size: int, skip_rows: int = 0) -> Iterator[Chunk]:
    """``source``'s records after the first ``skip_rows``, validated ``batch_size`` at a time."""
    from dmitems.formats import Unreadable

    # CSV records hold only known columns, name and price always: see validate_columns.
    validate = validate_columns if source.format == "csv" else validate_values
    records = source.records()
    if skip_rows:
        skip_records(records, skip_rows, source)
    while True:
        taken = list(islice(records, batch_size))
        if not taken:
            return
        positions = [position for position, _ in taken]
        batch = [record for _, record in taken]
        rejects: list[Reject] = []
        if source.unreadable:
            # Records the reader could not parse skip validation and are refused as they are.
            rejects = [
                (position, record.text, [("record", record.reason)])
                for position, record in taken
                if isinstance(record, Unreadable)
            ]
            if rejects:
                kept = [pair for pair in taken if not isinstance(pair[1], Unreadable)]
                positions = [position for position, _ in kept]
                batch = [record for _, record in kept]
            source.unreadable = 0
        values, problems = validate(batch)
        if problems:
            by_index: dict[int, list[tuple[str, str]]] = {}
            for index, path, reason in problems:
                by_index.setdefault(index, []).append((path, reason))
            rejects += [(positions[i], batch[i], found) for i, found in by_index.items()]
            rejects.sort(key=lambda reject: reject[0])
            positions = [p for i, p in enumerate(positions) if i not in by_index]
        yield Chunk(values, positions, rejects, len(taken), source.bytes_read)


class Feed:
    """Reads and validates chunks on a worker thread while the loop inserts the previous one.

    Parsing and validation are Python work; the insert mostly waits on the
    database (or on SQLite's C code, which releases the GIL), so overlapping
    them buys throughput.  At most ``ahead`` chunks wait in between.  A daemon
    thread, not the loop's executor: a read blocked on stdin must not keep an
    interrupted import from ending.
    """

    _END = object()

    def __init__(self, chunks: Iterator[Chunk], ahead: int = 2) -> None:
        self._chunks = chunks
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._slots = threading.Semaphore(ahead)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dmitems-import-reader", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _run(self) -> None:
        try:
            for chunk in self._chunks:
                self._slots.acquire()
                if self._stopped.is_set():
                    return
                self._put(chunk)
            self._put(self._END)
        except BaseException as exc:  # noqa: BLE001 - handed to the loop and raised there
            self._put(exc)

    async def get(self) -> Chunk | None:
        """The next chunk; None at the end of the input.  Raises what reading raised."""
        item = await self._queue.get()
        self._slots.release()
        if item is self._END:
            return None
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[no-any-return]

    def stop(self) -> None:
        self._stopped.set()
        self._slots.release()
