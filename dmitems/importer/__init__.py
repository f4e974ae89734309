"""Bulk loading as a pipeline: read → validate → chunk → insert, under a commit policy.

=================  ==========================================================
module             its one job
=================  ==========================================================
:mod:`dmitems.formats`   read: CSV, JSON arrays, JSON Lines as records
``validation``     validate records against ItemCreate, a chunk per call
                   (the API's batch routes use it too)
``chunks``         read → validate → chunk, on a reader thread (``Feed``)
``process``        the same in a child process, for files ≥ 32 MiB
``bulk``           insert: COPY or executemany, as sync and async twins
                   (the CLI import and both API modes insert alike)
``policy``         the commit policy: atomic, skip-invalid, commit-every
``report``         progress, the summary, ImportAborted: durable counts
``rejects``        the rejects file of ``--skip-invalid``
``spec``           ImportSpec: one import's source and options
``run``            ``import_records(database, spec, on_progress)``
=================  ==========================================================

The names below are the public ones; the API imports ``validate_records``
and ``insert_rows`` / ``insert_rows_sync`` from here.
"""

from __future__ import annotations

from dmitems.importer.bulk import (
    METHODS,
    insert_rows,
    insert_rows_sync,
    insert_values,
    insert_values_sync,
    resolve_method,
)
from dmitems.importer.report import ImportAborted, ImportSummary, Progress
from dmitems.importer.run import import_records
from dmitems.importer.spec import DEFAULT_BATCH_SIZE, ImportSpec
from dmitems.importer.validation import Problem, Values, validate_columns, validate_records

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "METHODS",
    "ImportAborted",
    "ImportSpec",
    "ImportSummary",
    "Problem",
    "Progress",
    "Values",
    "import_records",
    "insert_rows",
    "insert_rows_sync",
    "insert_values",
    "insert_values_sync",
    "resolve_method",
    "validate_columns",
    "validate_records",
]
