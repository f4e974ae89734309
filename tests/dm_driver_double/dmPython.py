"""A DRIVER DOUBLE of ``dmPython``, the Dameng DM8 C driver.  Not the real driver.

No DM server can run on the machines this project is developed and tested on
(none is packaged for PyPI or Debian), so the DM code paths of dmitems are
tested against this double of the *driver module*.  It stands in for
``dmPython`` when its folder is first on ``sys.path`` (or when
:func:`tests.dm_driver_double.installed` swaps it in), underneath the real,
unmodified ``dmAsync`` and ``dmSQLAlchemy`` packages.

What it implements: the DB-API surface that dmSQLAlchemy and dmAsync use
(``connect``, ``Connection`` with ``cursor/commit/rollback/close/ping`` and the
attributes the dialect reads, ``Cursor`` with ``execute/executemany/fetch*``,
``description``, ``rowcount``, ``lastrowid``; the exception classes with a
``DmError`` holding ``.code`` at ``exc.args[0]``; the type constants).

How it answers:

* the dialect's system queries (``V$instance``, ``SET_SESSION_IDENTITY_CHECK``,
  ``ALL_TABLES``, ``SF_GET_*``, ``SELECT 1 FROM DUAL`` ...) get canned rows;
* statements on user tables run on one shared SQLite database (in memory, or
  the file named by ``DMPYTHON_DOUBLE_DB``) after rewriting the few DM-only
  forms (``IDENTITY``, ``VARCHAR2(n CHAR)``, ``OFFSET ? ROWS FETCH FIRST ?
  ROWS ONLY``); SQLite errors come back as DM error codes (-2106, -6602, ...).
  Transactions are not modelled: every statement is committed at once.

What it measures: every call is appended to :data:`calls` with the thread it
ran on, whether that thread was running an asyncio event loop (a call there
stalls the loop for its whole duration) and how long it took.  Each round trip
(login, execute, executemany, commit, rollback, ping) sleeps the configured
latency, so blocking calls show up as loop lag.

Configure with :func:`configure` or the environment (read at import):
``DMPYTHON_DOUBLE_LATENCY`` (seconds per round trip), ``DMPYTHON_DOUBLE_LOGIN_LATENCY``
(seconds per login), ``DMPYTHON_DOUBLE_LENGTH_IN_CHAR`` (0 or 1),
``DMPYTHON_DOUBLE_DB`` (SQLite file shared by processes).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DOUBLE = True  # lets a test assert it is talking to the double, never to a real driver
version = "2.6.1"
apilevel = "2.0"
threadsafety = 1
paramstyle = "qmark"
buildtime = "driver double"


# -- exceptions, shaped like dmPython's --------------------------------------


class DmError:
    """What dmPython puts in ``exc.args[0]``: ``code``, ``message``, ``context``, ``offset``."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = f"[CODE:{code}]{message}"
        self.context = ""
        self.offset = 0

    def __str__(self) -> str:
        return self.message


class Warning(Exception):  # noqa: A001 - DB-API name
    pass


class Error(Exception):
    pass


class InterfaceError(Error):
    pass


class DatabaseError(Error):
    pass


class DataError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class IntegrityError(DatabaseError):
    pass


class InternalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class NotSupportedError(DatabaseError):
    pass


def dm_error(code: int, message: str, cls: type[DatabaseError] = DatabaseError) -> DatabaseError:
    return cls(DmError(code, message))


# -- type constants the dialect looks up -------------------------------------


class _Type:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<dmPython double type {self.name}>"


for _name in (
    "BFILE BIGINT BINARY BLOB BOOLEAN CLOB CURSOR DATE DATETIME DECIMAL DOUBLE "
    "FIXED_BINARY FIXED_STRING INTERVAL LONG_BINARY LONG_STRING NUMBER OBJECTVAR REAL "
    "ROWID STRING TIME TIMESTAMP TIMESTAMP_WITH_TIMEZONE TIME_WITH_TIMEZONE "
    "YEAR_MONTH_INTERVAL exBFILE objectvar"
).split():
    globals()[_name] = _Type(_name)


class LOB:
    pass


TupleCursor = 0
DictCursor = 1
Date = datetime.date
Timestamp = datetime
Binary = bytes


# -- configuration and the call record ---------------------------------------


@dataclass
class Settings:
    latency: float = float(os.environ.get("DMPYTHON_DOUBLE_LATENCY", "0"))
    login_latency: float = float(os.environ.get("DMPYTHON_DOUBLE_LOGIN_LATENCY", "0"))
    length_in_char: int = int(os.environ.get("DMPYTHON_DOUBLE_LENGTH_IN_CHAR", "1"))
    case_sensitive: int = 1
    unicode_flag: int = 1
    server_version: str = "8.1.3.100"
    # operation ("connect", "execute", "commit", ...) -> error its next call raises
    failures: dict[str, DatabaseError] = field(default_factory=dict)
    # when set, every login raises this (a wrong password, a locked account, ...)
    refuse_logins: DatabaseError | None = None
    # when set, called with the operation's name as each call starts (tests wait on it)
    on_call: Any = None


settings = Settings()


@dataclass
class Call:
    name: str
    statement: str | None
    thread: str
    thread_id: int
    on_loop_thread: bool
    started: float
    seconds: float

    @property
    def loop_blocked(self) -> float:
        """Seconds this call held an event loop's thread (0 when it ran in a worker)."""
        return self.seconds if self.on_loop_thread else 0.0


calls: list[Call] = []
_calls_lock = threading.Lock()


def configure(**changes: Any) -> Settings:
    for key, value in changes.items():
        if not hasattr(settings, key):
            raise AttributeError(f"driver double has no setting {key!r}")
        setattr(settings, key, value)
    return settings


def reset() -> None:
    """Forget recorded calls, stored rows and settings (between tests)."""
    global settings, _store
    with _calls_lock:
        calls.clear()
    settings = Settings()
    if _store is not None:
        _store.close()
    _store = None


def fail_next(operation: str, code: int, message: str) -> None:
    """Make the next ``operation`` ("connect", "execute", "executemany", "commit") raise."""
    settings.failures[operation] = dm_error(code, message)


def _on_loop_thread() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Recorder:
    def __init__(self, name: str, statement: str | None = None, latency: float | None = None):
        self.name = name
        self.statement = statement
        self.latency = settings.latency if latency is None else latency

    def __enter__(self) -> None:
        self.on_loop = _on_loop_thread()
        self.started = time.perf_counter()
        if settings.on_call is not None:
            settings.on_call(self.name)
        failure = settings.failures.pop(self.name, None)
        if self.latency:
            time.sleep(self.latency)
        if failure is not None:
            self._record()
            raise failure

    def __exit__(self, *exc_info: Any) -> None:
        self._record()

    def _record(self) -> None:
        thread = threading.current_thread()
        call = Call(
            self.name,
            self.statement,
            thread.name,
            thread.ident or 0,
            self.on_loop,
            self.started,
            time.perf_counter() - self.started,
        )
        with _calls_lock:
            calls.append(call)


# -- the "server": canned system rows + SQLite for user tables ---------------


class _Store:
    """One SQLite database standing in for the server's user tables."""

    def __init__(self, path: str) -> None:
        self.lock = threading.RLock()
        self.db = sqlite3.connect(
            path,
            check_same_thread=False,
            isolation_level=None,
            detect_types=sqlite3.PARSE_DECLTYPES,
        )
        self.db.execute("PRAGMA busy_timeout = 10000")

    def close(self) -> None:
        self.db.close()


_store: _Store | None = None


def _the_store() -> _Store:
    global _store
    if _store is None:
        _store = _Store(os.environ.get("DMPYTHON_DOUBLE_DB") or ":memory:")
    return _store


def _parse_datetime(raw: bytes) -> datetime:
    return datetime.fromisoformat(raw.decode())


sqlite3.register_converter("DATETIME", _parse_datetime)
sqlite3.register_converter("TIMESTAMP", _parse_datetime)


@functools.lru_cache(maxsize=512)
def _normalized(statement: str) -> str:
    return " ".join(statement.split()).upper().rstrip(";")


def _canned(statement: str, parameters: Any) -> list[tuple[Any, ...]] | None:
    """Rows for the system queries DM drivers and dmitems send, or None."""
    text = _normalized(statement)
    if "FROM V$INSTANCE" in text:
        return [("NORMAL",)]
    if "SET_SESSION_IDENTITY_CHECK" in text:
        return [(None,)]
    if text in ("SELECT 1 FROM DUAL", "SELECT 1"):
        return [(1,)]
    if text == "SELECT USER FROM DUAL":
        return [("SYSDBA",)]
    if "FROM V$TRX" in text:
        return [("READ COMMITTED",)]
    if text.startswith("SELECT SF_GET_") or "V$DM_INI" in text or "FROM V$VERSION" in text:
        values = {
            "SF_GET_LENGTH_IN_CHAR()": settings.length_in_char,
            "SF_GET_CASE_SENSITIVE_FLAG()": settings.case_sensitive,
            "SF_GET_UNICODE_FLAG()": settings.unicode_flag,
            "SF_GET_PAGE_SIZE()": 8192,
        }
        if "FROM V$VERSION" in text:
            return [(f"DM Database Server 64 V{settings.server_version}-double",)]
        columns = re.findall(r"SF_GET_[A-Z_]+\(\)", text)
        return [tuple(values.get(column) for column in columns)]
    if "ALL_TABLES" in text and "ALL_VIEWS" in text:
        name = str(parameters[0]).lower() if parameters else ""
        with _the_store().lock:
            found = _the_store().db.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND lower(name) = ?",
                (name,),
            ).fetchone()
        return [(parameters[0],)] if found else []
    if text.startswith("COMMENT ON"):
        return []
    return None


_IDENTITY = re.compile(r"\bBIGINT NOT NULL IDENTITY\(\d+, ?\d+\)", re.IGNORECASE)
_VARCHAR_CHAR = re.compile(r"\bVARCHAR2?\((\d+)( CHAR)?\)", re.IGNORECASE)
_OFFSET_FETCH = re.compile(r"\s*OFFSET \? ROWS\s+FETCH FIRST \? ROWS ONLY\s*$", re.IGNORECASE)
_FETCH = re.compile(r"\s*FETCH FIRST \? ROWS ONLY\s*$", re.IGNORECASE)
_RETURNING_INTO = re.compile(r"\s+RETURNING .+ INTO \?(, ?\?)*\s*$", re.IGNORECASE)


def _to_sqlite(statement: str, parameters: list[Any]) -> tuple[str, list[Any], int]:
    """The SQLite form of a DM statement; also how many trailing out-binds were dropped."""
    sql, swap_paging, out_binds = _sqlite_form(statement)
    if swap_paging:
        parameters = parameters[:-2] + [parameters[-1], parameters[-2]]
    return sql, parameters, out_binds


# A C driver does its per-statement work in microseconds, mostly without the GIL; the
# double's regular expressions would cost tens of microseconds under it on every call,
# so each statement's translation is worked out once.
@functools.lru_cache(maxsize=512)
def _sqlite_form(statement: str) -> tuple[str, bool, int]:
    """(SQLite SQL, whether the two paging binds swap places, trailing out-binds dropped)."""
    out_binds = 0
    swap_paging = False
    sql = statement.strip().rstrip(";")
    sql = _IDENTITY.sub("INTEGER NOT NULL", sql)
    sql = _VARCHAR_CHAR.sub(lambda m: f"VARCHAR({m.group(1)})", sql)
    if _OFFSET_FETCH.search(sql):
        sql = _OFFSET_FETCH.sub(" LIMIT ? OFFSET ?", sql)
        swap_paging = True
    elif _FETCH.search(sql):
        sql = _FETCH.sub(" LIMIT ?", sql)
    match = _RETURNING_INTO.search(sql)
    if match:
        out_binds = match.group(0).count("?")
        sql = sql[: match.start()]
    return sql, swap_paging, out_binds


_COLUMN_LIMIT = re.compile(r"\b(\w+) VARCHAR\((\d+)\)", re.IGNORECASE)


def _translate(exc: sqlite3.Error) -> DatabaseError:
    message = str(exc)
    lowered = message.lower()
    if "no such table" in lowered:
        name = message.rsplit(":", 1)[-1].strip().upper()
        return dm_error(-2106, f"Invalid table or view name [{name}]", ProgrammingError)
    if "unique" in lowered:
        return dm_error(-6602, "Violate unique constraint on [ITEMS]", IntegrityError)
    if "check constraint" in lowered:
        return dm_error(-6604, "Violate check constraint of [CK_ITEMS]", IntegrityError)
    if "not null" in lowered:
        return dm_error(-6609, "Violate not null constraint on [ITEMS]", IntegrityError)
    if "already exists" in lowered:
        return dm_error(-2124, "Object already exists", ProgrammingError)
    return dm_error(-2007, f"Syntax error ({message})", ProgrammingError)


# -- DB-API objects ----------------------------------------------------------


class Connection:
    def __init__(self, **kwargs: Any) -> None:
        self._closed = False
        self.user = kwargs.get("user") or "SYSDBA"
        self.server = kwargs.get("server") or kwargs.get("host") or "localhost"
        self.port = int(kwargs.get("port") or 5236)
        self.dsn = kwargs.get("dsn") or f"{self.server}:{self.port}"
        self.login_timeout = kwargs.get("login_timeout", 5)
        self.local_code = kwargs.get("local_code", 1)
        self.lang_id = kwargs.get("lang_id", 0)
        self.connection_timeout = kwargs.get("connection_timeout", 0)
        self.autocommit = self.autoCommit = bool(kwargs.get("autoCommit", True))
        self.current_schema = kwargs.get("schema") or self.user.upper()
        self.server_version = settings.server_version
        self.version = settings.server_version
        self.str_case_sensitive = bool(settings.case_sensitive)
        self.max_identifier_length = 128
        self.outputtypehandler = None
        self.stmtcachesize = 20
        self.txn_isolation = 1
        self.connect_kwargs = dict(kwargs)

    def _check(self) -> None:
        if self._closed:
            raise dm_error(-70025, "Connection not opened", InterfaceError)

    def cursor(self) -> Cursor:
        self._check()
        return Cursor(self)

    def commit(self) -> None:
        self._check()
        with _Recorder("commit"):
            pass

    def rollback(self) -> None:
        self._check()
        with _Recorder("rollback"):
            pass

    def ping(self, reconnect: bool = False) -> None:
        self._check()
        with _Recorder("ping"):
            pass

    def close(self) -> None:
        if not self._closed:
            with _Recorder("close", latency=0):
                self._closed = True

    disconnect = close


class Cursor:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.arraysize = 50
        self.description: list[tuple[Any, ...]] | None = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.statement: str | None = None
        self._rows: list[tuple[Any, ...]] = []
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise dm_error(-70027, "Invalid cursor status", InterfaceError)
        self.connection._check()

    def execute(self, statement: str, parameters: Any = None, **named: Any) -> Any:
        self._check()
        params = list(parameters or named.values())
        with _Recorder("execute", statement):
            self._run(statement, params)
        return self if self.description else None

    def executemany(self, statement: str, seq_of_parameters: Any) -> list[Any] | None:
        self._check()
        rows = [list(row) for row in seq_of_parameters]
        with _Recorder("executemany", statement):
            total = 0
            store = _the_store()
            with store.lock:
                for row in rows:
                    sql, params, out_binds = _to_sqlite(statement, row)
                    if out_binds:
                        params = params[: len(params) - out_binds]
                    try:
                        total += store.db.execute(sql, params).rowcount
                    except sqlite3.Error as exc:
                        raise _translate(exc) from None
            self.rowcount = total
            self.description = None
        return None

    def _run(self, statement: str, params: list[Any]) -> None:
        self.statement = statement
        canned = _canned(statement, params)
        if canned is not None:
            self._rows = list(canned)
            is_query = statement.lstrip().upper().startswith("SELECT")
            self.description = [("COLUMN", STRING, None, None, None, None, True)] if is_query else None
            self.rowcount = len(self._rows)
            return
        sql, params, out_binds = _to_sqlite(statement, params)
        if out_binds:
            params = params[: len(params) - out_binds]
        store = _the_store()
        with store.lock:
            try:
                cursor = store.db.execute(sql, params)
            except sqlite3.Error as exc:
                raise _translate(exc) from None
            self.description = (
                [(d[0].upper(), STRING, None, None, None, None, True) for d in cursor.description]
                if cursor.description
                else None
            )
            self._rows = cursor.fetchall() if cursor.description else []
            self.rowcount = len(self._rows) if cursor.description else cursor.rowcount
            self.lastrowid = cursor.lastrowid

    def fetchone(self) -> tuple[Any, ...] | None:
        self._check()
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        self._check()
        size = size or self.arraysize
        taken, self._rows = self._rows[:size], self._rows[size:]
        return taken

    def fetchall(self) -> list[tuple[Any, ...]]:
        self._check()
        taken, self._rows = self._rows, []
        return taken

    def setinputsizes(self, *args: Any, **kwargs: Any) -> None:
        return None

    def setoutputsize(self, *args: Any) -> None:
        return None

    def close(self) -> None:
        self._closed = True

    def __iter__(self) -> Any:
        while self._rows:
            yield self._rows.pop(0)


def connect(*args: Any, **kwargs: Any) -> Connection:
    """Log in: one round trip of ``login_latency``; fails like dmPython when told to."""
    with _Recorder("connect", f"login {kwargs.get('user')}@{kwargs.get('server') or kwargs.get('host')}",
                   latency=settings.login_latency):
        if settings.refuse_logins is not None:
            raise settings.refuse_logins
        return Connection(**kwargs)


Connect = connect
