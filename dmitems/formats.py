"""Item files on disk: CSV (with a header), JSON arrays and JSON Lines.

Readers stream: a record at a time, in constant memory whatever the file
size, counting the bytes they consume so progress can be shown.  Writers
stream too, and :func:`atomic_output` only puts a file in place once it is
complete, so an error never leaves half a file behind.  No I/O policy lives
here beyond that; :mod:`dmitems.importer`, :mod:`dmitems.exporter` and
:mod:`dmitems.datagen` use these.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import os
import stat
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, TextIO

from dmitems.errors import InvalidInput
from dmitems.models import WRITABLE_FIELDS

FORMATS = ("csv", "json", "jsonl")
SUFFIXES = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
REQUIRED_COLUMNS = ("name", "price")
# csv refuses fields over 128 KiB by default; a 1 MB cell must reach validation and be
# reported there (too long), not crash the reader.
CSV_FIELD_LIMIT = 64 * 1024 * 1024
_READ_SIZE = 1 << 20


def format_for(path: str | os.PathLike[str] | None, explicit: str | None) -> str:
    """The format named by ``explicit`` or, failing that, by the file's suffix."""
    if explicit:
        fmt = explicit.lower()
        if fmt not in FORMATS:
            raise InvalidInput(f"unknown format '{explicit}'; use one of {', '.join(FORMATS)}")
        return fmt
    if path is None or str(path) == "-":
        raise InvalidInput("reading stdin needs --format csv|json|jsonl")
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInput(
            f"cannot tell the format of '{path}' from its suffix; "
            f"use --format {'|'.join(FORMATS)} (or a .csv/.json/.jsonl file)"
        )
    return SUFFIXES[suffix]


def check_encoding(encoding: str) -> str:
    """The codec name to read with; UTF-8 becomes utf-8-sig so a BOM is dropped."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise InvalidInput(f"unknown encoding '{encoding}' (try utf-8 or gbk)") from None
    return "utf-8-sig" if name == "utf-8" else name


# -- reading -----------------------------------------------------------------


class CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes read through it (for progress)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        # read1 returns what a pipe has now instead of waiting for a full buffer.
        self._read = getattr(stream, "read1", stream.read)
        self.bytes_read = 0
        self.last_read_at = 0  # offset where the latest read started

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.last_read_at = self.bytes_read
        self.bytes_read += size
        return size


@dataclass
class Unreadable:
    """A record that could not be parsed (e.g. a malformed JSON line)."""

    reason: str
    text: str


@dataclass
class Source:
    """An open input: records as ``(position, record)``, plus byte counts for progress.

    ``position`` is a 1-based line number for CSV and JSON Lines, a 0-based
    index for a JSON array (``where`` says which).
    """

    label: str
    format: str
    encoding: str
    size: int | None  # None for stdin
    counter: CountingReader
    ignore_extra: bool = False
    _stream: IO[bytes] | None = None
    path: str | None = None  # a regular file another process may open again; None otherwise
    unreadable: int = 0  # Unreadable records yielded since the consumer last reset this

    @property
    def where(self) -> str:
        return "index" if self.format == "json" else "line"

    @property
    def bytes_read(self) -> int:
        return self.counter.bytes_read

    def records(self) -> Iterator[tuple[int, Any]]:
        text = io.TextIOWrapper(
            io.BufferedReader(self.counter, _READ_SIZE), encoding=self.encoding, newline=""
        )
        readers = {"csv": self._csv, "json": self._json, "jsonl": self._jsonl}
        try:
            yield from readers[self.format](text)
        except UnicodeDecodeError as exc:
            at = self.counter.last_read_at + exc.start
            hint = "" if self.encoding == "gbk" else "; if it came from Chinese Excel, try --encoding gbk"
            raise InvalidInput(
                f"{self.label}: cannot decode byte 0x{exc.object[exc.start]:02x} at offset {at} "
                f"as {self.encoding.removesuffix('-sig')}{hint}"
            ) from None

    def close(self) -> None:
        if self._stream is not None and self._stream is not sys.stdin.buffer:
            self._stream.close()

    def _keep(self, record: Any) -> Any:
        if self.ignore_extra and isinstance(record, dict):
            return {key: value for key, value in record.items() if key in WRITABLE_FIELDS}
        return record

    # CSV ---------------------------------------------------------------------

    def _columns(self, header: list[str]) -> tuple[int, int, int | None, int]:
        names = [cell.strip().lstrip("\ufeff").lower() for cell in header]
        seen = set()
        for name in names:
            if name in seen:
                raise InvalidInput(f"{self.label}: column '{name}' appears twice in the header")
            seen.add(name)
        missing = [column for column in REQUIRED_COLUMNS if column not in names]
        if missing:
            raise InvalidInput(
                f"{self.label}: missing required column {', '.join(repr(c) for c in missing)} "
                f"(header: {', '.join(names) or 'empty'})"
            )
        extra = [name for name in names if name not in WRITABLE_FIELDS]
        if extra and not self.ignore_extra:
            raise InvalidInput(
                f"{self.label}: unknown column {', '.join(repr(c) for c in extra)} "
                "(columns are name, description, price); use --ignore-extra to skip it"
            )
        described = names.index("description") if "description" in names else None
        return names.index("name"), names.index("price"), described, len(names)

    def _csv(self, text: TextIO) -> Iterator[tuple[int, Any]]:
        if csv.field_size_limit() < CSV_FIELD_LIMIT:
            csv.field_size_limit(CSV_FIELD_LIMIT)
        reader = csv.reader(text)
        line = 0
        try:
            header = next(reader, None)
            if header is None:
                return
            name_at, price_at, description_at, width = self._columns(header)
            line = reader.line_num
            for cells in reader:
                start, line = line + 1, reader.line_num
                if len(cells) != width:
                    if not cells:
                        continue  # a blank line
                    if len(cells) > width or len(cells) <= max(name_at, price_at):
                        self.unreadable += 1
                        yield start, Unreadable(
                            f"{len(cells)} values, but the header has {width} columns",
                            ",".join(cells),
                        )
                        continue
                price = cells[price_at]
                if price.isascii() and price.isdigit():
                    price = int(price)  # the common case, converted here in C: measured 10% faster
                record = {"name": cells[name_at], "price": price}
                if description_at is not None and description_at < len(cells):
                    # An empty cell means "no description".
                    record["description"] = cells[description_at] or None
                yield start, record
        except csv.Error as exc:
            raise InvalidInput(f"{self.label}: line {reader.line_num}: {exc}") from None

    # JSON Lines --------------------------------------------------------------

    def _jsonl(self, text: TextIO) -> Iterator[tuple[int, Any]]:
        import orjson

        for number, line in enumerate(text, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                self.unreadable += 1
                yield number, Unreadable(
                    f"malformed JSON at column {exc.colno}: {exc.msg}", line.rstrip("\r\n")
                )
                continue
            yield number, self._keep(record)

    # JSON array --------------------------------------------------------------

    def _json(self, text: TextIO) -> Iterator[tuple[int, Any]]:
        parser = _ArrayParser(text, self.label)
        for index, record in enumerate(parser):
            yield index, self._keep(record)


class _ArrayParser:
    """Yields the elements of a top-level JSON array, reading the text a piece at a time.

    Each element is decoded by the stdlib's C decoder (``raw_decode``) straight
    from a sliding buffer, so an element is never copied twice and the buffer
    stays about one read long (or one element, if an element is bigger).
    Errors name the line, column and character offset in the whole file.
    """

    def __init__(self, text: TextIO, label: str) -> None:
        self._text = text
        self._label = label
        self._decoder = json.JSONDecoder()
        self._buffer = ""
        self._at = 0  # position in the buffer
        self._offset = 0  # characters dropped before the buffer
        self._lines = 0  # newlines dropped before the buffer
        self._line_start = 0  # offset of the start of the line the buffer begins in
        self._eof = False

    def _fill(self, at_least: int = _READ_SIZE) -> bool:
        """Read more text; False at the end of the input."""
        if self._eof:
            return False
        dropped = self._buffer[: self._at]
        if "\n" in dropped:
            self._lines += dropped.count("\n")
            self._line_start = self._offset + dropped.rindex("\n") + 1
        self._offset += self._at
        more = self._text.read(max(at_least, _READ_SIZE))
        self._buffer = self._buffer[self._at :] + more
        self._at = 0
        if not more:
            self._eof = True
        return bool(more)

    def _skip_space(self) -> str:
        """The next non-space character ('' at the end), without consuming it."""
        while True:
            buffer, at = self._buffer, self._at
            while at < len(buffer) and buffer[at] in " \t\r\n":
                at += 1
            self._at = at
            if at < len(buffer):
                return buffer[at]
            if not self._fill():
                return ""

    def _fail(self, reason: str, at: int | None = None) -> InvalidInput:
        at = self._at if at is None else at
        newline = self._buffer.rfind("\n", 0, at)
        line = self._lines + self._buffer.count("\n", 0, at) + 1
        start = self._offset + newline + 1 if newline >= 0 else self._line_start
        offset = self._offset + at
        return InvalidInput(
            f"{self._label}: malformed JSON at line {line}, column {offset - start + 1} "
            f"(character {offset}): {reason}"
        )

    def _value(self) -> Any:
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._at)
            except json.JSONDecodeError as exc:
                # Cut off by the end of the buffer?  Then read on and try again.
                truncated = exc.pos >= len(self._buffer) - 8 or exc.msg.startswith(
                    "Unterminated string"
                )
                failed_at = self._offset + exc.pos  # _fill moves the buffer
                if truncated and self._fill(len(self._buffer)):
                    continue
                raise self._fail(exc.msg, failed_at - self._offset) from None
            if end >= len(self._buffer) and self._fill():
                continue  # a number or literal may go on in the next piece
            self._at = end
            return value

    def __iter__(self) -> Iterator[Any]:
        first = self._skip_space()
        if first == "":
            return  # an empty file holds no records
        if first != "[":
            raise self._fail("expected a JSON array of items ('[' ...)")
        self._at += 1
        if self._skip_space() == "]":
            self._at += 1
        else:
            while True:
                if self._skip_space() == "":
                    raise self._fail("unexpected end of input inside the array")
                yield self._value()
                following = self._skip_space()
                self._at += 1
                if following == "]":
                    break
                if following != ",":
                    self._at -= 1
                    raise self._fail(
                        "unexpected end of input inside the array"
                        if following == ""
                        else "expected ',' or ']' after an element"
                    )
        if self._skip_space() != "":
            raise self._fail("unexpected data after the array")


def open_source(
    path: str | os.PathLike[str], fmt: str | None, encoding: str = "utf-8", ignore_extra: bool = False
) -> Source:
    """Open ``path`` (or ``-`` for stdin) for reading records."""
    chosen = format_for(path, fmt)
    codec = check_encoding(encoding)
    reopenable = None
    if str(path) == "-":
        stream: IO[bytes] = sys.stdin.buffer
        label, size = "stdin", None
    else:
        label = str(path)
        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed by Source.close
        except FileNotFoundError:
            raise InvalidInput(f"no such file: {path}") from None
        except IsADirectoryError:
            raise InvalidInput(f"{path} is a directory, not a file") from None
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
        status = os.fstat(stream.fileno())
        size = status.st_size
        if stat.S_ISREG(status.st_mode):
            reopenable = os.path.abspath(path)
    return Source(
        label=label,
        format=chosen,
        encoding=codec,
        size=size,
        counter=CountingReader(stream),  # type: ignore[arg-type]
        ignore_extra=ignore_extra,
        _stream=stream,
        path=reopenable,
    )


# -- writing -----------------------------------------------------------------


class RecordWriter:
    """Writes mappings as CSV (header first), a JSON array, or JSON Lines."""

    def __init__(self, stream: TextIO, fmt: str, fields: tuple[str, ...] = WRITABLE_FIELDS) -> None:
        import orjson

        self._stream = stream
        self._format = fmt
        self._fields = fields
        self._dumps = orjson.dumps
        self._count = 0
        if fmt == "csv":
            self._csv = csv.writer(stream)
            self._csv.writerow(fields)
        elif fmt == "json":
            stream.write("[")

    def write(self, record: Mapping[str, Any]) -> None:
        if self._format == "csv":
            self._csv.writerow(
                ["" if record.get(key) is None else record.get(key) for key in self._fields]
            )
        else:
            line = self._dumps({key: record.get(key) for key in self._fields}).decode()
            if self._format == "json":
                self._stream.write(("\n" if self._count == 0 else ",\n") + line)
            else:
                self._stream.write(line + "\n")
        self._count += 1

    def close(self) -> None:
        if self._format == "json":
            self._stream.write("\n]\n" if self._count else "]\n")


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str] | None, encoding: str = "utf-8"
) -> Iterator[TextIO]:
    """A text stream for ``path`` (stdout for None or ``-``), put in place only when complete.

    The data goes to a hidden temporary file beside the target, renamed over
    it on success and removed on any error, so a failed or interrupted export
    never leaves a half-written file.
    """
    codec = check_encoding(encoding)
    if codec == "utf-8-sig":
        codec = "utf-8"  # write no BOM unless asked for utf-8-sig explicitly
        if encoding.lower().replace("_", "-") == "utf-8-sig":
            codec = "utf-8-sig"
    if path is None or str(path) == "-":
        sys.stdout.flush()
        stream = io.TextIOWrapper(sys.stdout.buffer, encoding=codec, newline="")
        try:
            yield stream
        finally:
            stream.flush()
            stream.detach()
        return
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding=codec, newline="") as stream:
            yield stream
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
