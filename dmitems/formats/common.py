"""Names shared by the readers and the writers: the formats, and the encodings they accept."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from dmitems.errors import InvalidInput

FORMATS = ("csv", "json", "jsonl")
SUFFIXES = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


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

