"""Item files on disk: CSV (with a header), JSON arrays and JSON Lines.

Readers stream: a record at a time, in constant memory whatever the file
size, counting the bytes they consume so progress can be shown.  Writers
stream too, and :func:`atomic_output` only puts a file in place once it is
complete, so an error never leaves half a file behind.  No I/O policy lives
here beyond that; :mod:`dmitems.importer`, :mod:`dmitems.exporter` and
:mod:`dmitems.datagen` use these.

``common`` (format names, encodings), ``readers`` (:func:`open_source`),
``json_array`` (the streaming JSON array parser), ``writers``.
"""

from __future__ import annotations

from dmitems.formats.common import FORMATS, SUFFIXES, check_encoding, format_for
from dmitems.formats.json_array import ArrayParser
from dmitems.formats.readers import CountingReader, Source, Unreadable, open_source
from dmitems.formats.writers import RecordWriter, atomic_output

__all__ = [
    "FORMATS",
    "SUFFIXES",
    "ArrayParser",
    "CountingReader",
    "RecordWriter",
    "Source",
    "Unreadable",
    "atomic_output",
    "check_encoding",
    "format_for",
    "open_source",
]
