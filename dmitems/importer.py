"""Bulk loading: read → validate → chunk → insert, with a progress callback.

Two layers live here:

* the **shared bulk path** — :func:`validate_records` and :func:`insert_rows` —
  used by ``dmitems item import`` *and* by the HTTP API's ``POST /items/batch``
  and ``POST /items/batch_create``, so a batch behaves the same whichever door
  it comes through;
* :func:`import_records`, which streams records from a reader in
  :mod:`dmitems.formats`, validates them a chunk at a time, inserts them in
  the modes the CLI offers (atomic, skip-invalid, commit-every) and reports
  progress through a callback.  Nothing here prints: the CLI draws the
  progress bar from the callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import marshal
import pickle
import sys
import threading
import time
from itertools import islice
from operator import itemgetter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from dmitems.errors import DmitemsError, Interrupted, InvalidInput, ValidationFailed
from dmitems.models import WRITABLE_FIELDS, items
from dmitems.schemas import ItemCreate, ItemRead

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from dmitems.db import Database
    from dmitems.db.base import Backend
    from dmitems.formats import Source

METHODS = ("auto", "insert", "copy")
# Chosen by measurement (benchmarks/import_bench.py --batch-sizes 1000,5000,10000,20000):
# 1,000-row chunks cost COPY round trips; from 5,000 to 20,000 rows/s stays within
# noise on both backends while peak RSS grows (75 → 110 MB for 1M rows).
DEFAULT_BATCH_SIZE = 10_000
SHOWN_PROBLEMS = 20

Problem = tuple[int, str, str]
"""(index within the chunk, field path, reason)."""



def _field_type(name: str) -> Any:
    """ItemCreate's field ``name`` as one annotated type: its type, constraints and validators."""
    from typing import Annotated

    info = ItemCreate.model_fields[name]
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def _row_type() -> Any:
    """A TypedDict with ItemCreate's fields, constraints and validators, or ItemCreate itself.

    Validating into plain dicts skips building a model per row: measured 2x
    faster than ``list[ItemCreate]`` per chunk.  It is only equivalent while
    ItemCreate has no model-level or field validators of its own, so the
    fast type is used only then (tests/test_importer.py checks the parity).
    """
    from pydantic import ConfigDict
    from typing_extensions import NotRequired, Required, TypedDict

    decorators = ItemCreate.__pydantic_decorators__
    if decorators.model_validators or decorators.field_validators or decorators.validators:
        return ItemCreate
    fields: dict[str, Any] = {}
    for name, info in ItemCreate.model_fields.items():
        annotation = _field_type(name)
        fields[name] = Required[annotation] if info.is_required() else NotRequired[annotation]
    row = TypedDict("ItemRow", fields)  # type: ignore[operator]
    row.__pydantic_config__ = ConfigDict(extra=ItemCreate.model_config.get("extra"))  # type: ignore[attr-defined]
    return row


_ROW = _row_type()
_CHUNK: TypeAdapter[list[Any]] = TypeAdapter(list[_ROW])  # type: ignore[valid-type]
# One adapter per column, for records whose keys are known to be ItemCreate's own
# (CSV rows): see validate_columns.  None when ItemCreate validates whole records.
_COLUMNS: tuple[TypeAdapter[list[Any]], ...] | None = (
    None
    if _ROW is ItemCreate
    else tuple(TypeAdapter(list[_field_type(name)]) for name in WRITABLE_FIELDS)  # type: ignore[misc]
)

Values = tuple[str, "str | None", int]
"""A validated row as the bulk insert takes it: (name, description, price)."""


# -- the shared bulk path (CLI import and the HTTP API) ----------------------


def _problems(error: ValidationError, field: str | None = None) -> list[Problem]:
    """One (index, field path, reason) per error of a list validation; ``field`` names a column's."""
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        index, *path = detail["loc"]
        where = field or ".".join(str(part) for part in path) or "record"
        problems.append((int(index), where, detail["msg"].removeprefix("Value error, ")))
    return problems


def validate_records(
    records: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Validate a chunk of records against :class:`ItemCreate` in one pydantic call.

    Returns ``(rows, problems)``: the valid records as dicts holding exactly
    ``name``, ``description`` and ``price`` (in input order), and one
    ``(index within the chunk, field path, reason)`` per problem.  The HTTP
    API's batch routes call this too.

    The whole chunk goes through one ``TypeAdapter`` call over a list (see
    :func:`_row_type`); when some records fail, the rest are validated again
    in one more call.
    """
    try:
        valid = _CHUNK.validate_python(records)
    except ValidationError as error:
        problems = _problems(error)
        bad = {index for index, _, _ in problems}
        valid = _CHUNK.validate_python(
            [record for index, record in enumerate(records) if index not in bad]
        )
    else:
        problems = []
    if _ROW is ItemCreate:
        return [model.model_dump() for model in valid], problems
    for row in valid:
        if "description" not in row:
            row["description"] = None
    return valid, problems


def validate_columns(records: Sequence[Mapping[str, Any]]) -> tuple[list[Values], list[Problem]]:
    """:func:`validate_records` for records that hold only ItemCreate's keys, name and price always.

    CSV rows are such records (the reader takes exactly the header's known
    columns and refuses short rows), so each column can be checked in one
    pydantic call against the field's own type: half the cost of validating
    a dict per row (measured 0.41 vs 0.88 µs a row).  Same checks, same
    reasons, problems in the same order; returns the valid rows as
    :data:`Values` tuples.  Falls back to validate_records when ItemCreate
    has validators of its own, which could look at several fields at once.
    """
    if _COLUMNS is None:
        return _validate_values(records)
    columns = (
        [record["name"] for record in records],
        [record.get("description") for record in records],
        [record["price"] for record in records],
    )
    checked = []
    problems = []
    for field, adapter, column in zip(WRITABLE_FIELDS, _COLUMNS, columns):
        try:
            checked.append(adapter.validate_python(column))
        except ValidationError as error:
            problems += _problems(error, field)
    if not problems:
        return list(zip(*checked)), []
    problems.sort(key=lambda problem: problem[0])  # stable: a record's fields stay in order
    bad = {index for index, _, _ in problems}
    kept = [
        adapter.validate_python([value for index, value in enumerate(column) if index not in bad])
        for adapter, column in zip(_COLUMNS, columns)
    ]
    return list(zip(*kept)), problems


_values = itemgetter(*WRITABLE_FIELDS)  # a row dict → (name, description, price)


async def _copy_rows(connection: AsyncConnection, values: list[Values]) -> None:
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens its transaction on the first statement;
        # COPY through the driver must not run before it, or it would autocommit.
        await connection.exec_driver_sql("SELECT 1")
    await driver.copy_records_to_table(
        items.name,
        records=values,
        columns=list(WRITABLE_FIELDS),
        schema_name=items.schema,
    )


def resolve_method(backend: Backend, method: str) -> str:
    """``insert`` or ``copy``: what ``method`` (auto|insert|copy) means on ``backend``."""
    if method not in METHODS:
        raise InvalidInput(f"unknown insert method '{method}'; use one of {', '.join(METHODS)}")
    if method == "copy" and backend.name != "postgresql":
        raise InvalidInput(f"--method copy needs PostgreSQL; this database is {backend.name}")
    if method == "auto":
        return "copy" if backend.name == "postgresql" else "insert"
    return method


async def insert_rows(
    connection: AsyncConnection,
    backend: Backend,
    rows: Sequence[Mapping[str, Any]],
    *,
    method: str = "auto",
    returning: bool = False,
    plain: bool = False,
    executor: Any = None,
) -> int | list[ItemRead] | list[dict[str, Any]]:
    """Insert validated rows in bulk inside the caller's transaction.

    The one bulk write path: ``dmitems item import`` and the HTTP API's
    ``POST /items/batch`` / ``POST /items/batch_create`` all call it.

    * ``returning=False``: returns the number of rows inserted.  ``method``
      ``copy`` (``auto`` on PostgreSQL) streams the rows with asyncpg's binary
      COPY on the caller's connection and transaction; ``insert`` is one Core
      ``INSERT`` executemany (no RETURNING, never a row at a time; on DM this
      is the driver's array insert).
    * ``returning=True``: returns the new rows as :class:`ItemRead`, in input
      order, through the repository's ``bulk_create`` (multi-row
      ``INSERT … RETURNING`` where the dialect supports it); ``plain=True``
      gives them as dicts (the repository's plain results, for the API);
      ``executor`` runs the statements (see :class:`~dmitems.repository.AsyncItems`).
    """
    if returning:
        from dmitems.repository import AsyncItems

        items = AsyncItems(connection, backend, plain=plain, executor=executor)
        return await items.bulk_create(rows)  # type: ignore[no-any-return]
    return await insert_values(connection, backend, list(map(_values, rows)), method=method)


async def insert_values(
    connection: AsyncConnection, backend: Backend, values: list[Values], *, method: str = "auto"
) -> int:
    """:func:`insert_rows` without RETURNING, for rows already as :data:`Values` tuples.

    The import's path: its chunks travel as tuples, which COPY and the
    drivers' executemany take as they are.
    """
    if not values:
        return 0
    if resolve_method(backend, method) == "copy":
        await _copy_rows(connection, values)
        return len(values)
    plain_sql = _plain_insert(connection.dialect)
    if plain_sql is not None:
        await connection.exec_driver_sql(plain_sql, values)
        return len(values)
    from dmitems.repository import AsyncItems

    rows = [dict(zip(WRITABLE_FIELDS, row)) for row in values]
    return await AsyncItems(connection, backend).bulk_insert(rows)  # type: ignore[no-any-return]


_PLAIN_INSERTS: dict[str, str | None] = {}


def _plain_insert(dialect: Any) -> str | None:
    """The repository's bulk INSERT compiled once for ``dialect``, when tuples can feed it.

    Handing the driver tuples through ``exec_driver_sql`` skips SQLAlchemy's
    per-row parameter processing: measured 370,000 vs 250,000 rows/s on
    SQLite.  Only for positional dialects whose columns need no bind
    processing (SQLite, asyncpg); anything else (DM) goes through the
    repository's ``bulk_insert``.
    """
    key = f"{dialect.name}+{dialect.driver}"
    if key not in _PLAIN_INSERTS:
        from dmitems import statements

        compiled = statements.bulk_insert_items().compile(
            dialect=dialect, column_keys=list(WRITABLE_FIELDS), for_executemany=True
        )
        usable = (
            dialect.positional
            and not compiled.effective_returning
            and list(compiled.positiontup or ()) == list(WRITABLE_FIELDS)
            and not compiled._bind_processors
        )
        _PLAIN_INSERTS[key] = compiled.string if usable else None
    return _PLAIN_INSERTS[key]


# -- streaming import (the CLI's `item import`) -------------------------------


@dataclass
class ImportOptions:
    """How to import: the CLI's options, as one value."""

    batch_size: int = DEFAULT_BATCH_SIZE
    method: str = "auto"
    skip_invalid: bool = False
    commit_every: int | None = None
    rejects: Path | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InvalidInput("--batch-size must be at least 1")
        if self.commit_every is not None and self.commit_every < 1:
            raise InvalidInput("--commit-every must be at least 1")
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


@dataclass
class Progress:
    """Where an import stands; handed to the progress callback after each chunk."""

    bytes_read: int
    bytes_total: int | None
    read: int
    inserted: int
    rejected: int


@dataclass
class ImportSummary:
    """What an import did.  ``committed`` rows are durable; nothing else is."""

    source: str
    format: str
    mode: str
    method: str
    batch_size: int
    read: int = 0
    inserted: int = 0
    committed: int = 0
    rejected: int = 0
    elapsed: float = 0.0
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    problem_count: int = 0
    outcome: str = "ok"  # ok | invalid | failed | interrupted
    error: str | None = None
    rejects_file: str | None = None

    @property
    def rows_per_second(self) -> float:
        return self.read / self.elapsed if self.elapsed > 0 else 0.0

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
            "read": self.read,
            "inserted": self.inserted,
            "committed": self.committed,
            "rejected": self.rejected,
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


@dataclass
class _Chunk:
    """One batch of records, validated: the rows to insert and the records refused."""

    values: list[Values]
    positions: list[int]  # position of each row in the input, for database errors
    rejects: list[tuple[int, Any, list[tuple[str, str]]]]  # (position, record, problems)
    read: int
    bytes_read: int


def _validated_chunks(source: Source, batch_size: int) -> Iterator[_Chunk]:
    from dmitems.formats import Unreadable

    # CSV records hold only known columns, name and price always: see validate_columns.
    validate = validate_columns if source.format == "csv" else _validate_values
    records = source.records()
    while True:
        taken = list(islice(records, batch_size))
        if not taken:
            return
        positions = [position for position, _ in taken]
        batch = [record for _, record in taken]
        rejects: list[tuple[int, Any, list[tuple[str, str]]]] = []
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
        yield _Chunk(values, positions, rejects, len(taken), source.bytes_read)


def _validate_values(records: Sequence[Any]) -> tuple[list[Values], list[Problem]]:
    rows, problems = validate_records(records)
    return list(map(_values, rows)), problems


class _Feed:
    """Reads and validates chunks on a worker thread while the loop inserts the previous one.

    Parsing and validation are Python work; the insert mostly waits on the
    database (or on SQLite's C code, which releases the GIL), so overlapping
    them buys throughput.  At most ``ahead`` chunks wait in between.  A daemon
    thread, not the loop's executor: a read blocked on stdin must not keep an
    interrupted import from ending.
    """

    _END = object()

    def __init__(self, chunks: Iterator[_Chunk], ahead: int = 2) -> None:
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

    async def get(self) -> _Chunk | None:
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


# Files smaller than this are read on the thread instead.  Starting the reader
# process (a fresh interpreter importing pydantic, SQLAlchemy and dmitems) costs
# about 0.25 s before its first chunk arrives, against 0.03 s on the thread.
# Measured on the 2-core development machine with generated CSV (~90 bytes a
# row) into PostgreSQL (COPY): 100k rows (9 MB) 0.57 s by process vs 0.45 s on
# the thread, 200k rows (18 MB) 0.90 vs 0.83 s, 300k rows (27 MB) about even,
# 1M rows (90 MB) 4.3 vs 4.9 s; into SQLite 1M rows ran 220k vs 150k rows/s.
PROCESS_THRESHOLD = 32 * 1024 * 1024


class _ProcessFeed(_Feed):
    """Reads and validates a file's chunks in a separate process; same interface as _Feed.

    On the thread, parsing and validation hold the GIL that the loop needs to
    encode the previous chunk for COPY; in a process of their own they run
    truly in parallel.  The child opens the file itself, builds the same
    :class:`_Chunk` objects and sends them through a pipe: its ``send`` blocks
    until this side reads, and this side's thread takes at most ``ahead``
    chunks ahead of the loop (as _Feed does), so memory stays flat.

    The child is a fresh interpreter (``python -c``), never a fork of this
    process, which runs a loop and threads; unlike multiprocessing's "spawn"
    it does not re-run the caller's ``__main__``.  It ignores SIGINT (Ctrl-C
    reaches the whole process group; this process decides what an interrupt
    means) and is ended by :meth:`stop`.
    """

    def __init__(self, source: Source, batch_size: int, ahead: int = 2) -> None:
        import json
        import os
        import signal
        import subprocess
        from multiprocessing.connection import Connection

        read_end, write_end = os.pipe()
        _widen_pipe(write_end)
        self._receiver = Connection(read_end, writable=False)
        settings = json.dumps(
            [write_end, source.path, source.label, source.format, source.encoding,
             source.ignore_extra, batch_size]
        )
        # SIGINT stays blocked from the fork until the child has set it to be ignored
        # (the mask survives exec), so a Ctrl-C during its start-up cannot print a
        # traceback from it.  Here it is only held back, then delivered as usual.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _READER_PROGRAM, str(Path(__file__).resolve().parents[1]),
                 settings],
                # Nothing may reach the user's terminal or --json output from here:
                # errors travel through the pipe; a crash shows as the exit code.
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(write_end,),
            )
        except BaseException:
            self._receiver.close()
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            os.close(write_end)
        self._finished = False  # the child sent its last message and is exiting
        super().__init__(self._received(), ahead)

    def _received(self) -> Iterator[_Chunk]:
        while True:
            try:
                message = self._receiver.recv_bytes()
            except (EOFError, OSError):
                if self._stopped.is_set():
                    return
                raise DmitemsError(
                    "the import's reader process ended unexpectedly "
                    f"(exit code {self._process.wait()})"
                ) from None
            kind, body = message[:1], message[1:]
            if kind == _CHUNK_MESSAGE:
                yield _unpack_chunk(body)
            elif kind == _ERROR_MESSAGE:
                self._finished = True
                raise pickle.loads(body)
            else:
                self._finished = True
                return

    def stop(self) -> None:
        import subprocess

        super().stop()
        if not self._finished and self._process.poll() is None:
            self._process.terminate()  # still reading: the import stopped early
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._thread.join(5)
        self._receiver.close()


# The reader process's program; argv[1] is where this copy of dmitems lives, in case the
# parent found it through its own sys.path (appended, so it never shadows anything).
_READER_PROGRAM = (
    "import sys; sys.path.append(sys.argv[1]); "
    "from dmitems.importer import _reader_main; _reader_main()"
)

# What the reader process sends: a tag byte, then the body.
_CHUNK_MESSAGE, _END_MESSAGE, _ERROR_MESSAGE = b"c", b"z", b"e"


def _pack_chunk(chunk: _Chunk) -> bytes:
    """A chunk as marshal data.

    marshal writes and reads lists of tuples of plain values several times
    faster than pickle (measured 0.23 µs a row for both ends, against about
    1 µs to unpickle alone), and the receiving side holds the GIL the loop
    needs while it decodes.  Records that marshal cannot hold (nothing a
    reader yields today) go by pickle.
    """
    body = (chunk.read, chunk.bytes_read, chunk.positions, chunk.values, chunk.rejects)
    try:
        return b"m" + marshal.dumps(body)
    except ValueError:
        return b"p" + pickle.dumps(body)


def _unpack_chunk(data: bytes) -> _Chunk:
    body = marshal.loads(data[1:]) if data[:1] == b"m" else pickle.loads(data[1:])
    read, bytes_read, positions, values, rejects = body
    return _Chunk(values, positions, rejects, read, bytes_read)


def _widen_pipe(descriptor: int) -> None:
    """Let the pipe hold a whole chunk (Linux), so this side reads one in a call or two.

    Each read gives up the GIL and must win it back from the loop thread, which
    may hold it for a switch interval (5 ms) while it encodes COPY data: with the
    default 64 KiB pipe a chunk of 10,000 rows took ~16 reads.
    """
    import fcntl

    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(descriptor, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)


_PIPE_SIZE = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size


def _reader_main() -> None:
    """The reader process (see _ProcessFeed): a message per chunk, then the end or the error.

    Whatever goes wrong is sent to the parent and raised there, as on the
    thread, so the user sees the same one line.
    """
    import json
    import signal
    from multiprocessing.connection import Connection

    from dmitems.formats import open_source

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    descriptor, path, label, fmt, encoding, ignore_extra, batch_size = json.loads(sys.argv[2])
    sender = Connection(descriptor, readable=False)
    gc.freeze()  # as _collector_frozen does in the parent
    source = None
    try:
        source = open_source(path, fmt, encoding, ignore_extra)
        source.label = label  # messages name the file as the user did
        for chunk in _validated_chunks(source, batch_size):
            sender.send_bytes(_CHUNK_MESSAGE + _pack_chunk(chunk))
        sender.send_bytes(_END_MESSAGE)
    except (BrokenPipeError, ConnectionResetError):
        return  # the parent stopped listening
    except BaseException as exc:  # noqa: BLE001 - raised in the parent, as _Feed does
        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001 - send what can be sent
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(OSError):
            sender.send_bytes(_ERROR_MESSAGE + pickle.dumps(exc))
    finally:
        if source is not None:
            source.close()
        sender.close()


class _Rejects:
    """The rejects file: one JSON line per refused record, with where it was and why."""

    def __init__(self, path: Path, where: str) -> None:
        from dmitems.formats import atomic_output

        self._where = where
        self._context = atomic_output(path)
        self._stream = self._context.__enter__()
        import orjson

        self._dumps = orjson.dumps

    def write(self, position: int, record: Any, problems: list[tuple[str, str]]) -> None:
        reason = "; ".join(f"{path}: {why}" for path, why in problems)
        entry = {self._where: position, "reason": reason, "record": record}
        self._stream.write(self._dumps(entry, default=str).decode() + "\n")

    def finish(self, keep: bool) -> None:
        """Put the file in place, or (nothing was written) discard it like a failed output."""
        if keep:
            self._context.__exit__(None, None, None)
        else:
            discarded = Interrupted("import rolled back")
            with contextlib.suppress(Interrupted):
                self._context.__exit__(Interrupted, discarded, None)


@contextlib.asynccontextmanager
async def _collector_frozen() -> AsyncIterator[None]:
    """Keep the garbage collector off the objects that already exist while importing.

    An import allocates millions of short-lived objects, so full collections
    run often, and each one walks every object the loaded libraries own
    (SQLAlchemy, pydantic, drivers).  ``gc.freeze()`` parks those in a
    permanent generation until the import ends: measured 20-25 % more rows/s.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _locate_failure(
    database: Database, values: list[Values], positions: list[int]
) -> int | None:
    """The position of the first row of a failed chunk that the database refuses on its own.

    Runs in a separate transaction that is always rolled back, so it writes nothing.
    """
    try:
        async with database.connect() as connection:
            transaction = await connection.begin()
            try:
                for row, position in zip(values, positions):
                    try:
                        await insert_values(connection, database.backend, [row], method="insert")
                    except Exception:  # noqa: BLE001 - any refusal marks the row
                        return position
            finally:
                if transaction.is_active:
                    await transaction.rollback()
    except DmitemsError:
        return None
    return None


async def import_records(
    database: Database,
    source: Source,
    options: ImportOptions,
    on_progress: Callable[[Progress], None] | None = None,
) -> ImportSummary:
    """Stream ``source`` into the items table; return the summary or raise ImportAborted.

    * atomic (default): one transaction; any invalid record means nothing is
      written (the whole file is still read, to report every problem);
    * ``skip_invalid``: valid records go in, refused ones go to the rejects file;
    * ``commit_every``: a commit after every N inserted rows (at chunk ends),
      so ``summary.committed`` rows stay even if the import stops later.

    Cancellation (Ctrl-C) rolls back the open transaction and raises
    ImportAborted wrapping :class:`Interrupted`.
    """
    method = resolve_method(database.backend, options.method)
    batch_size = min(options.batch_size, options.commit_every or options.batch_size)
    summary = ImportSummary(
        source=source.label,
        format=source.format,
        mode=options.mode,
        method=method,
        batch_size=batch_size,
    )
    rejects = _Rejects(options.rejects, source.where) if options.rejects else None
    started = time.perf_counter()
    try:
        if (
            source.path is not None
            and (source.size or 0) >= PROCESS_THRESHOLD
            and sys.executable
            and sys.platform != "win32"  # pass_fds and signal masks are POSIX
        ):
            feed: _Feed = _ProcessFeed(source, batch_size)
        else:
            feed = _Feed(_validated_chunks(source, batch_size))
    except BaseException:
        source.close()
        if rejects is not None:
            rejects.finish(keep=False)
        raise
    pending = 0  # inserted since the last commit
    failed_chunk: _Chunk | None = None
    try:
        async with database.connect() as connection, _collector_frozen():
            transaction = await connection.begin()
            try:
                while (chunk := await feed.get()) is not None:
                    summary.read += chunk.read
                    for position, record, problems in chunk.rejects:
                        summary.add_problems(f"{source.where} {position}", problems)
                        if rejects is not None:
                            rejects.write(position, record, problems)
                    summary.rejected += len(chunk.rejects)
                    if summary.problem_count and not options.skip_invalid:
                        pass  # atomic: nothing will be written; keep reading to report all
                    elif chunk.values:
                        failed_chunk = chunk
                        await insert_values(connection, database.backend, chunk.values, method=method)
                        failed_chunk = None
                        summary.inserted += len(chunk.values)
                        pending += len(chunk.values)
                        if options.commit_every and pending >= options.commit_every:
                            interrupted = await _commit(transaction)
                            summary.committed += pending
                            pending = 0
                            if interrupted:
                                raise asyncio.CancelledError
                            transaction = await connection.begin()
                    if on_progress is not None:
                        on_progress(
                            Progress(
                                chunk.bytes_read,
                                source.size,
                                summary.read,
                                summary.inserted,
                                summary.rejected,
                            )
                        )
                if summary.problem_count and not options.skip_invalid:
                    raise _invalid(summary)
                interrupted = await _commit(transaction)
                summary.committed += pending
                pending = 0
                if interrupted:
                    raise asyncio.CancelledError
            finally:
                if transaction.is_active:
                    await transaction.rollback()
    except asyncio.CancelledError:
        summary.outcome = "interrupted"
        raise _aborted(summary, Interrupted(_interrupted_message(summary)), started) from None
    except _InvalidRecords as error:
        summary.outcome = "invalid"
        raise _aborted(summary, error, started) from None
    except DmitemsError as error:
        if failed_chunk is not None and error.exit_code in (2, 6):
            position = await _locate_failure(database, failed_chunk.values, failed_chunk.positions)
            if position is not None:
                error.message = f"{source.where} {position}: {error.message}"
        summary.outcome = "failed"
        raise _aborted(summary, error, started) from None
    finally:
        feed.stop()
        source.close()
        if rejects is not None:
            rejects.finish(keep=summary.committed > 0 or summary.outcome == "ok")
    summary.inserted = summary.committed
    summary.elapsed = time.perf_counter() - started
    summary.rejects_file = str(options.rejects) if options.rejects else None
    return summary


async def _commit(transaction: Any) -> bool:
    """Commit, and see it through even if the import is cancelled meanwhile; True if it was.

    A cancelled ``await transaction.commit()`` can still commit (aiosqlite's
    thread, for one, carries on), and the summary would then under-count the
    rows that stay.  So the commit runs to its end, the caller counts it, and
    only then stops.
    """
    from dmitems.db.closing import see_through

    return await see_through(asyncio.ensure_future(transaction.commit())) is not None


class _InvalidRecords(ValidationFailed):
    """Atomic mode met invalid records, so nothing was written."""


def _invalid(summary: ImportSummary) -> _InvalidRecords:
    count = summary.problem_count
    records = summary.rejected
    return _InvalidRecords(
        f"{records} invalid record{'s' if records != 1 else ''} "
        f"({count} problem{'s' if count != 1 else ''}); nothing was written "
        "(fix them, or use --skip-invalid --rejects FILE)"
    )


def _interrupted_message(summary: ImportSummary) -> str:
    if summary.committed:
        return (
            f"interrupted after reading {summary.read} records: {summary.committed} rows were "
            "committed and stay; the uncommitted rest was rolled back"
        )
    return f"interrupted after reading {summary.read} records: rolled back, nothing was written"


def _aborted(summary: ImportSummary, error: DmitemsError, started: float) -> ImportAborted:
    summary.inserted = summary.committed
    summary.elapsed = time.perf_counter() - started
    if summary.outcome == "failed" and not summary.committed:
        error.message += "; nothing was written"
    elif summary.outcome == "failed":
        error.message += f"; {summary.committed} rows committed before it stay"
    summary.error = error.message
    return ImportAborted(error, summary)
