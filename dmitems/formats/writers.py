"""Writers: records as CSV (header first), a JSON array or JSON Lines; files put in place when complete."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from dmitems.errors import InvalidInput
from dmitems.formats.common import check_encoding
from dmitems.models import WRITABLE_FIELDS


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
