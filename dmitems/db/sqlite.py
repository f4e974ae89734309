"""SQLite: WAL, busy timeout and foreign keys on every connection; writers take turns.

SQLite has one write lock per file.  Writers in one process take turns through
the Database's write gate (``serialize_writes``) instead of colliding on the
lock and sleep-polling in SQLite's busy handler; ``busy_timeout`` still covers
writers in other processes (``serve --workers N``, the CLI).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from dmitems.db.base import Backend, first_line
from dmitems.errors import (
    DatabaseUnreachable,
    DmitemsError,
    IntegrityViolation,
    SchemaMissing,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dmitems.config import Settings


class SQLiteBackend(Backend):
    name = "sqlite"
    schemes = ("sqlite", "sqlite+pysqlite", "sqlite+aiosqlite")
    async_driver = "aiosqlite"
    sync_driver = "pysqlite"
    async_modules = ("aiosqlite",)
    sync_modules = ("sqlite3",)
    install_hint = "pip install aiosqlite"
    serialize_writes = True

    def engine_options(self, settings: Settings, is_async: bool) -> dict[str, Any]:
        _check_directory(settings.database_url)
        options = super().engine_options(settings, is_async)
        # A file has no server to lose; recycling and pinging buy nothing.
        options.update(pool_recycle=-1, pool_pre_ping=False)
        # pysqlite's own lock wait, in seconds; PRAGMA busy_timeout below says the same.
        options["connect_args"] = {"timeout": settings.database_busy_timeout}
        return options

    def configure(self, engine: Engine, settings: Settings) -> None:
        busy_ms = int(settings.database_busy_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                # busy_timeout first: switching to WAL needs a lock of its own.
                cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
                cursor.execute("PRAGMA foreign_keys = ON")
            finally:
                cursor.close()

    def classify(self, exc: BaseException, target: str) -> DmitemsError | None:
        import sqlite3

        message = str(exc)
        if isinstance(exc, sqlite3.IntegrityError):
            return IntegrityViolation(f"rejected by the database: {first_line(message)}")
        if isinstance(exc, sqlite3.OperationalError):
            lowered = message.lower()
            if "no such table" in lowered:
                return SchemaMissing(
                    f"table 'items' does not exist in {target}; run `dmitems init-db` first"
                )
            if "no such column" in lowered:
                from dmitems.db.schema import column_missing

                return column_missing(target, first_line(message))
            if "unable to open database file" in lowered:
                return DatabaseUnreachable(f"cannot open the SQLite file {target}")
            if "locked" in lowered or "busy" in lowered:
                return self.busy(target)
        if isinstance(exc, sqlite3.DatabaseError) and "not a database" in message:
            return DatabaseUnreachable(f"{target} is not a SQLite database file")
        return None


def _check_directory(url: str) -> None:
    """A file in a missing directory is refused before aiosqlite starts its worker thread:
    a failed connect leaves that thread reporting to a closed event loop, which prints a
    stray traceback after the error.  Checked each time an engine is built, so a server
    answers 503 until the directory appears."""
    from sqlalchemy.engine import make_url

    path = make_url(url).database or ""
    if path and path != ":memory:" and not path.startswith("file:"):
        directory = Path(path).expanduser().absolute().parent
        if not directory.is_dir():
            raise DatabaseUnreachable(
                f"cannot open the SQLite file {path}: directory {directory} does not exist"
            )
