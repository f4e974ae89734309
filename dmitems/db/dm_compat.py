"""Compatibility fixes for dmSQLAlchemy + dmAsync + dmPython: the one place they live.

Every DM8 defect dmitems knows of is listed in :data:`DEFECTS` (the README's
"DM8 notes" explain each one).  Each entry says how to detect the defect in
the *installed* packages -- by an attribute or by running a small piece of
their code on probe objects, never by version string alone -- and, where
dmitems can, how to fix it.  :func:`apply` runs the fixes whose defect is
present (each once per loaded module; debug-logged), :func:`report` returns
the machine-readable status for ``dmitems doctor``.

The fixes rely only on the DB-API surface of dmPython (``cursor``,
``execute``, ``fetchall``, ``description``, ``close``, the attributes the
dialect itself reads) so that they hold for any conforming driver.

Status words: ``patched`` (present, fixed in this process), ``avoided``
(present, dmitems never takes the path that breaks), ``absent`` (not in the
installed packages), ``present`` (present and not fixed: a problem),
``advice`` (an environment matter dmitems cannot change from inside).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import os
import threading
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dmitems.config import Settings

log = logging.getLogger("dmitems.dm")

PATCHED = "patched"
AVOIDED = "avoided"
ABSENT = "absent"
PRESENT = "present"
ADVICE = "advice"
PROBLEM_STATUSES = frozenset({PRESENT})

_MARK = "_dmitems_fixed"
_lock = threading.Lock()


@dataclass
class Defect:
    key: str
    title: str
    symptom: str
    remedy: str
    present: bool | None = None
    status: str = ABSENT
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _modules() -> tuple[Any, Any, Any] | None:
    """(dmSQLAlchemy.dmasync, dmSQLAlchemy.extensions, dmAsync), or None if not importable."""
    try:
        dmasync = importlib.import_module("dmSQLAlchemy.dmasync")
        extensions = importlib.import_module("dmSQLAlchemy.extensions")
        dmasync_driver = importlib.import_module("dmAsync")
    except Exception as exc:  # noqa: BLE001 - any import failure means "cannot check"
        log.debug("DM packages not importable: %s", exc)
        return None
    return dmasync, extensions, dmasync_driver


def _fixed(owner: Any, key: str) -> bool:
    return key in getattr(owner, "__dict__", {}).get(_MARK, ())


def _mark(owner: Any, key: str) -> None:
    done = set(owner.__dict__.get(_MARK, ()))
    done.add(key)
    setattr(owner, _MARK, frozenset(done))


# -- 1. __slots__ shadowed by class attributes -------------------------------


def _shadowed_slots(dmasync: Any) -> list[tuple[type, str]]:
    found = []
    for cls, name in (
        (dmasync.AsyncAdapt_dmasync_cursor, "_cursor"),
        (dmasync.AsyncAdapt_dmasync_connection, "_connection"),
    ):
        value = cls.__dict__.get(name, None)
        if name in cls.__dict__ and not isinstance(value, types.MemberDescriptorType):
            found.append((cls, name))
    return found


def _fix_slots(dmasync: Any) -> str:
    removed = []
    for cls, name in _shadowed_slots(dmasync):
        delattr(cls, name)
        removed.append(f"{cls.__name__}.{name}")
    return "removed class attributes " + ", ".join(removed)


# -- 2. login and the two setup queries on the event loop thread --------------

# Connect options the upstream connect handles itself (dialect modes, creators).
_UPSTREAM_CONNECT_OPTIONS = frozenset(
    {"compatible_mode", "parse_type", "add_quote_all", "cursorclass", "async_creator_fn",
     "async_fallback"}
)
SETUP_QUERIES = ("SELECT MODE$ FROM V$instance;", "SELECT SET_SESSION_IDENTITY_CHECK(1);")


def _blocking_connect(dmasync: Any, dmasync_driver: Any) -> bool:
    # dmAsync.connect is a plain function whose Connection() logs in with
    # dmPython.connect on the calling thread, and the dialect's connect() then
    # runs its setup queries on the raw connection, also on that thread.
    connect = dmasync.DMDialect_dmAsync.connect
    return not inspect.iscoroutinefunction(dmasync_driver.connect) and not getattr(
        connect, "_dmitems", False
    )


def _login(loop: asyncio.AbstractEventLoop, params: dict[str, Any]) -> Any:
    """In a worker thread: log in through dmAsync, then run the dialect's setup queries."""
    import dmAsync

    connection = dmAsync.connect(loop=loop, **params)
    raw = connection.raw
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(SETUP_QUERIES[0])
            rows = cursor.fetchall()
            if not rows or rows[0][0] != "STANDBY":
                cursor.execute(SETUP_QUERIES[1])
        finally:
            cursor.close()
    except BaseException:
        raw.close()
        raise
    return connection


def _close_when_done(future: asyncio.Future[Any]) -> None:
    # A cancelled connect still finishes its login in the worker: close what it opened.
    if not future.cancelled() and future.exception() is None:
        try:
            future.result().raw.close()
        except Exception:  # noqa: BLE001 - best effort on an abandoned connection
            pass


def _fix_connect(dmasync: Any) -> str:
    dialect_cls = dmasync.DMDialect_dmAsync
    upstream = dialect_cls.connect

    def connect(self: Any, *cargs: Any, **cparams: Any) -> Any:
        if cargs or _UPSTREAM_CONNECT_OPTIONS.intersection(cparams):
            return upstream(self, *cargs, **cparams)
        params = dict(cparams)
        params.pop("dsn", None)  # dmAsync builds it from host and port
        if "database" in params:
            params["schema"] = params.pop("database")
        params["connection_timeout"] = params.get("connection_timeout") or 0

        async def open_in_worker() -> Any:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(None, _login, loop, params)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                future.add_done_callback(_close_when_done)
                raise

        adapted = self.dbapi.connect(async_creator_fn=open_in_worker)
        driver = adapted.driver_connection
        raw = driver.raw
        # What the upstream connect() records about the session, read from attributes.
        self.encoding = self.get_conn_local_code(raw)
        self.case_sensitive = raw.str_case_sensitive
        self.async_connect = driver
        self.requires_name_normalize = bool(self.case_sensitive)
        return adapted

    connect._dmitems = True  # type: ignore[attr-defined]
    connect.__doc__ = upstream.__doc__
    dialect_cls.connect = connect

    adapted_cls = dmasync.AsyncAdapt_dmasync_connection

    def close(self: Any) -> None:
        # Logging out is a round trip too: do it in a worker thread when on the loop.
        from sqlalchemy.util.concurrency import in_greenlet

        raw = self._connection.raw
        if in_greenlet():
            self.await_(asyncio.to_thread(raw.close))
        else:
            raw.close()

    adapted_cls.close = close
    return "login, setup queries and logout now run in the loop's executor"


# -- 3. execute returns an un-awaited coroutine; fetch runs on the loop --------


class _Completed:
    """An awaitable that is already done: the statement ran before it was returned."""

    __slots__ = ()

    def __await__(self) -> Any:
        return None
        yield  # pragma: no cover - makes this a generator


def _execute_is_lazy(dmasync: Any) -> bool:
    """Run the adapted cursor's ``_execute_async`` on probes: does it leave the work undone?"""
    ran: list[str] = []

    class ProbeCursor:
        description = None

        async def execute(self, *args: Any) -> None:
            ran.append("execute")

        async def fetchall(self) -> list[Any]:
            return []

    class ProbeConnection:
        _execute_mutex = asyncio.Lock()

    probe = types.SimpleNamespace(
        _cursor=ProbeCursor(), _adapt_connection=ProbeConnection(), server_side=False,
        _rows=collections.deque(),
    )
    coroutine = dmasync.AsyncAdapt_dmasync_cursor._execute_async(probe, "SELECT 1", None)
    result: Any = None
    try:
        coroutine.send(None)
    except StopIteration as done:
        result = done.value
    finally:
        coroutine.close()
    lazy = not ran and inspect.isawaitable(result)
    if inspect.iscoroutine(result):
        result.close()
    return lazy


def _fix_execute(dmasync: Any) -> str:
    from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_cursor

    cursor_cls = dmasync.AsyncAdapt_dmasync_cursor

    async def _execute_async(self: Any, operation: Any, parameters: Any) -> _Completed:
        raw = self._cursor.raw
        fetch = not self.server_side

        def run() -> list[Any] | None:
            if parameters is None:
                raw.execute(operation)
            else:
                raw.execute(operation, parameters)
            return list(raw.fetchall()) if fetch and raw.description else None

        async with self._adapt_connection._execute_mutex:
            rows = await asyncio.to_thread(run)
        if fetch:
            self._rows = collections.deque(rows or ())
        return _Completed()

    cursor_cls._execute_async = _execute_async
    # Rows are buffered by the execute above, so fetching reads the buffer.
    cursor_cls.fetchone = AsyncAdapt_dbapi_cursor.fetchone
    cursor_cls.fetchmany = AsyncAdapt_dbapi_cursor.fetchmany
    cursor_cls.fetchall = AsyncAdapt_dbapi_cursor.fetchall
    return "execute and fetch now run together in one worker-thread call"


# -- 4. pool_pre_ping never pings ---------------------------------------------


def _ping_is_dead(dmasync: Any, execute_lazy: bool) -> bool:
    from sqlalchemy.engine.default import DefaultDialect

    dialect_cls = dmasync.DMDialectAsync_dmasync
    return execute_lazy and dialect_cls.do_ping is DefaultDialect.do_ping


def _fix_ping(dmasync: Any) -> str:
    dialect_cls = dmasync.DMDialectAsync_dmasync

    def do_ping(self: Any, dbapi_connection: Any) -> bool:
        cursor = dbapi_connection.cursor()
        try:
            pending = cursor.execute(self._dialect_specific_select_one)
            if inspect.isawaitable(pending):
                dbapi_connection.await_(pending)
        finally:
            cursor.close()
        return True

    dialect_cls.do_ping = do_ping
    return "pre-ping sends SELECT 1 FROM DUAL and waits for it"


# -- 5. executemany with RETURNING --------------------------------------------


def _executemany_drops_result(dmasync_driver: Any) -> bool:
    """Run dmAsync's ``Cursor.executemany`` on a probe driver cursor: is its result lost?"""

    async def probe() -> Any:
        connection = types.SimpleNamespace(
            isexecuting=False, _waiter=None, _create_waiter=lambda name: None
        )
        impl = types.SimpleNamespace(executemany=lambda operation, parameters: ["result"])
        cursor = types.SimpleNamespace(_conn=connection, _echo=False, _impl=impl)
        return await dmasync_driver.Cursor.executemany(cursor, "INSERT", [])

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            return pool.submit(asyncio.run, probe()).result(timeout=10) is None
        except Exception as exc:  # noqa: BLE001 - a changed signature: cannot tell
            log.debug("executemany probe failed: %s", exc)
            return True


def _executemany_appends_returning(extensions: Any) -> bool:
    """Run the adapter's async executemany on probes: does it add RETURNING ... INTO?"""
    sent: list[str] = []

    class ProbeCursor:
        def executemany(self, statement: str, parameters: Any) -> None:
            sent.append(statement)

    column = object()
    table = types.SimpleNamespace(
        primary_key=types.SimpleNamespace(c=types.SimpleNamespace(_all_columns=[column]))
    )
    context = types.SimpleNamespace(
        out_parameters=None, invoked_statement=types.SimpleNamespace(table=table)
    )
    dialect = types.SimpleNamespace(
        identifier_preparer=types.SimpleNamespace(
            format_table=lambda t: "T", format_column=lambda c: "ID"
        ),
        do_normalize_name=lambda name: name,
    )
    try:
        extensions.DMDialect_Adapter().async_do_executemany_return(
            1, 1, dialect, ProbeCursor(), "INSERT INTO T (A) VALUES (?)", [[1]], context
        )
    except Exception:  # noqa: BLE001,S110 - await_only outside a greenlet; the statement was sent
        pass
    return bool(sent) and "RETURNING" in sent[0].upper()


def _fix_executemany_returning(dmasync: Any) -> str:
    for cls in (dmasync.DMDialect_dmAsync, dmasync.DMDialectAsync_dmasync):
        cls.insert_executemany_returning = False
        cls.insert_executemany_returning_sort_by_parameter_order = False
    return "insert_executemany_returning = False on the async DM dialects"


def _fix_appended_returning(extensions: Any) -> str:
    from sqlalchemy.util import await_only

    adapter_cls = extensions.DMDialect_Adapter
    upstream = adapter_cls.async_do_executemany_return

    def async_do_executemany_return(
        self: Any, columns: int, rows: int, dialect: Any, cursor: Any, statement: str,
        parameters: Any, context: Any = None,
    ) -> None:
        if context is not None and context.out_parameters:
            return upstream(self, columns, rows, dialect, cursor, statement, parameters, context)
        await_only(cursor.executemany(statement, parameters))
        return None

    adapter_cls.async_do_executemany_return = async_do_executemany_return
    return "plain executemany sends the INSERT as written (no RETURNING ... INTO)"


# -- the catalogue ------------------------------------------------------------


def _dialect_kwargs_misplaced(dmasync: Any) -> bool:
    try:
        return bool(dmasync.DMDialect_dmAsync(arraysize=7).arraysize != 7)
    except Exception:  # noqa: BLE001 - cannot even build it: treat as present
        return True


def _dmssl_dir() -> Path | None:
    spec = importlib.util.find_spec("dmPython")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "dmssl"
    return folder if folder.is_dir() else None


def _async_timeout_declared() -> bool:
    try:
        requires = importlib.metadata.requires("dmAsync") or []
    except importlib.metadata.PackageNotFoundError:
        return False
    return any(r.lower().replace("_", "-").startswith("async-timeout") for r in requires)


def _catalogue() -> list[Defect]:
    def d(key: str, title: str, symptom: str, remedy: str) -> Defect:
        return Defect(key, title, symptom, remedy)

    return [
        d("sqlalchemy-2.1", "dmSQLAlchemy imports sqlalchemy.util.await_fallback",
          "with SQLAlchemy 2.1 the DM dialect cannot load (ImportError)",
          "dmitems pins sqlalchemy>=2.0,<2.1"),
        d("async-timeout-undeclared", "dmAsync imports async_timeout without declaring it",
          "ModuleNotFoundError: async_timeout on the first dm+dmAsync connect",
          "dmitems depends on async-timeout itself"),
        d("slots-shadowing", "__slots__ shadowed by class attributes _cursor/_connection",
          "every dm+dmAsync connect fails: \"'AsyncAdapt_dmasync_connection' object attribute "
          "'_connection' is read-only\"",
          "deletes the shadowing class attributes so the slots work again"),
        d("blocking-connect", "login and setup queries run on the event loop thread",
          "the whole server freezes for every new connection (1 s on a refused port, a full "
          "login handshake otherwise); overflow connections reopen on the loop again and again",
          "logs in, runs SELECT MODE$ / SET_SESSION_IDENTITY_CHECK and logs out in a worker "
          "thread; recommends a fixed, pre-warmed pool (max_overflow=0)"),
        d("fetch-on-loop", "cursor execute returns an un-awaited coroutine; fetch runs on the loop",
          "fetchone/fetchall of every result block the loop; callers that do not await execute "
          "silently send nothing",
          "runs execute and fetchall together in one worker-thread call and buffers the rows"),
        d("small-executor", "worker threads come from the loop's default executor",
          "at most min(32, cpu+4) queries in flight (6 on 2 cores) whatever the pool allows: "
          "requests queue while connections sit idle",
          "sizes the loop's default executor to pool_size + max_overflow + a margin "
          "(dm.executor_threads overrides) wherever dmitems runs an async DM engine"),
        d("dead-pre-ping", "pool_pre_ping does nothing",
          "a warning that coroutine 'Cursor.execute' was never awaited; stale connections are "
          "handed out and the first query fails",
          "a do_ping that executes SELECT 1 FROM DUAL in a worker thread and waits for it"),
        d("executemany-returning", "bulk insert with RETURNING loses the driver's result",
          "TypeError: 'NoneType' object is not subscriptable on add_all() of 2+ objects or "
          "insert().returning() with many rows",
          "insert_executemany_returning = False: bulk inserts run without RETURNING, and "
          "bulk_create falls back to one insert per row in the same transaction"),
        d("executemany-appends-returning", "async executemany appends RETURNING pk INTO ?",
          "every bulk INSERT carries an out-bind per row whose values are thrown away",
          "plain executemany sends the INSERT as written"),
        d("returning-into-on-loop", "INSERT ... RETURNING ... INTO runs on the loop thread",
          "each ORM insert that fetches its key blocks the loop for a round trip",
          "dmitems never emits RETURNING ... INTO: a create is INSERT + rowid lookup + SELECT"),
        d("dialect-kwargs", "DMDialect_dmAsync passes its keyword arguments positionally",
          "arraysize and encoding_errors given to create_engine land in the wrong slots",
          "dmitems passes driver options through connect_args only"),
        d("login-timeout", "login_timeout=5 (the driver default) fails intermittently",
          "sporadic -70019 on fresh connections; login_timeout=0 hangs for 40 s and more",
          "connect_args login_timeout=30 (dm.login_timeout) and local_code=1 (UTF-8)"),
        d("encryption-module", "error -70089: encryption module failed to load",
          "every connect to a server that encrypts logins fails with -70089",
          "put the wheel's dmssl folder on LD_LIBRARY_PATH before starting Python"),
        d("identity", "IDENTITY only for Identity() or autoincrement=True",
          "inserts fail on NOT NULL for a plain integer primary key",
          "the items primary key is declared with Identity()"),
        d("text-is-lob", "Text compiles to TEXT, a large-object type",
          "slow LOB round trips for short strings", "items uses String(n) only"),
        d("reserved-words", "reserved words are quoted in lowercase (case-sensitive)",
          "columns named comment/level/size/user/ref become case-sensitive identifiers",
          "no items column uses a reserved word"),
        d("boolean-is", "Booleans compile to SMALLINT; .is_(True) compiles to IS 1",
          "a syntax error from DM", "items has no boolean column"),
        d("timezone-dropped", "DateTime(timezone=True) drops the zone",
          "timestamps come back naive, in the server's time zone",
          "created_at/updated_at use the server's CURRENT_TIMESTAMP and dmitems labels them "
          "UTC: run the DM server in UTC (as the SQLite and PostgreSQL backends store UTC)"),
        d("length-in-char", "LENGTH_IN_CHAR=0 limits VARCHAR2(n CHAR) binds to n bytes",
          "error -6108 for a 255-character Chinese name (765 bytes in UTF-8)",
          "init-db reads LENGTH_IN_CHAR and, when 0, sizes the columns in bytes (4 per "
          "character); -6108/-6169 become a one-line error quoting the byte limit"),
    ]


def _detect(defects: dict[str, Defect]) -> None:
    """Fill ``present``/``status`` from the installed packages, without changing them."""
    modules = _modules()
    import sqlalchemy.util

    def set_(key: str, present: bool | None, status: str, detail: str = "") -> None:
        defects[key].present = present
        defects[key].status = status
        defects[key].detail = detail

    present = not hasattr(sqlalchemy.util, "await_fallback")
    set_("sqlalchemy-2.1", present, PRESENT if present else ABSENT,
         f"sqlalchemy {sqlalchemy.__version__}")
    declared = _async_timeout_declared()
    installed = importlib.util.find_spec("async_timeout") is not None
    set_("async-timeout-undeclared", not declared,
         ABSENT if declared else (AVOIDED if installed else PRESENT),
         "async_timeout installed" if installed else "async_timeout missing")
    dmssl = _dmssl_dir()
    on_path = dmssl is not None and str(dmssl) in os.environ.get("LD_LIBRARY_PATH", "").split(":")
    set_("encryption-module", None, ABSENT if dmssl is None or on_path else ADVICE,
         f"export LD_LIBRARY_PATH={dmssl}:$LD_LIBRARY_PATH" if dmssl and not on_path else "")
    for key in ("identity", "text-is-lob", "reserved-words", "boolean-is",
                "login-timeout", "length-in-char"):
        set_(key, True, AVOIDED)
    set_("timezone-dropped", True, ADVICE)
    if modules is None:
        for key in ("slots-shadowing", "blocking-connect", "fetch-on-loop", "small-executor",
                    "dead-pre-ping", "executemany-returning", "executemany-appends-returning",
                    "returning-into-on-loop", "dialect-kwargs"):
            set_(key, None, ABSENT, "DM packages not installed")
        return
    dmasync, extensions, dmasync_driver = modules
    state = _state(dmasync, extensions, dmasync_driver)
    for key, (is_present, fixed, detail) in state.items():
        status = PATCHED if fixed else (PRESENT if is_present else ABSENT)
        set_(key, is_present, status, detail)
    set_("returning-into-on-loop", True, AVOIDED)
    misplaced = _dialect_kwargs_misplaced(dmasync)
    set_("dialect-kwargs", misplaced, AVOIDED if misplaced else ABSENT)
    _executor_status(defects["small-executor"])
    reserved = set(dmasync.DMDialectAsync_dmasync().identifier_preparer.reserved_words)
    from dmitems.models import items

    clash = sorted(c.name for c in items.columns if c.name.lower() in reserved)
    if clash:
        set_("reserved-words", True, PRESENT, "reserved column names: " + ", ".join(clash))


def _state(dmasync: Any, extensions: Any, dmasync_driver: Any) -> dict[str, tuple[bool, bool, str]]:
    # What the probes found before any fix ran, kept on the loaded module itself.
    found: dict[str, bool] | None = getattr(dmasync, "_dmitems_found", None)
    if found is None:
        found = {}
        found["slots-shadowing"] = bool(_shadowed_slots(dmasync))
        found["blocking-connect"] = _blocking_connect(dmasync, dmasync_driver)
        lazy = _execute_is_lazy(dmasync)
        found["fetch-on-loop"] = lazy
        found["dead-pre-ping"] = _ping_is_dead(dmasync, lazy)
        found["executemany-returning"] = (
            dmasync.DMDialectAsync_dmasync.insert_executemany_returning
            and _executemany_drops_result(dmasync_driver)
        )
        found["executemany-appends-returning"] = _executemany_appends_returning(extensions)
        dmasync._dmitems_found = found
    owner = dmasync.DMDialect_dmAsync
    return {
        key: (found[key], _fixed(owner, key), "")
        for key in ("slots-shadowing", "blocking-connect", "fetch-on-loop", "dead-pre-ping",
                    "executemany-returning", "executemany-appends-returning")
    }


_FIXES: dict[str, Callable[[Any, Any], str]] = {
    "slots-shadowing": lambda dmasync, extensions: _fix_slots(dmasync),
    "blocking-connect": lambda dmasync, extensions: _fix_connect(dmasync),
    "fetch-on-loop": lambda dmasync, extensions: _fix_execute(dmasync),
    "dead-pre-ping": lambda dmasync, extensions: _fix_ping(dmasync),
    "executemany-returning": lambda dmasync, extensions: _fix_executemany_returning(dmasync),
    "executemany-appends-returning": lambda dmasync, extensions: _fix_appended_returning(
        extensions
    ),
}


def apply() -> list[str]:
    """Fix every present, fixable defect in the loaded DM packages; return what was done."""
    modules = _modules()
    if modules is None:
        return []
    dmasync, extensions, dmasync_driver = modules
    owner = dmasync.DMDialect_dmAsync
    done = []
    with _lock:
        for key, (present, fixed, _detail) in _state(dmasync, extensions, dmasync_driver).items():
            if present and not fixed:
                what = _FIXES[key](dmasync, extensions)
                _mark(owner, key)
                log.debug("DM compat: %s: %s", key, what)
                done.append(key)
            elif not present:
                log.debug("DM compat: %s not present in the installed packages", key)
        if not _fixed(owner, "clean-rollback"):
            _install_clean_rollback(dmasync)
            _mark(owner, "clean-rollback")
            log.debug("DM compat: a rollback right after dmitems' own read-and-rollback is skipped")
    return done


def report() -> list[Defect]:
    """Every known defect with its current status (after :func:`apply`, if it ran)."""
    defects = {defect.key: defect for defect in _catalogue()}
    _detect(defects)
    return list(defects.values())


# -- not a defect: reads that end their own transaction -----------------------
#
# The API's one-statement reads run the statement, its fetch and the rollback
# that ends the implicit transaction in one worker-thread call
# (:func:`read_then_rollback`, run by the read relay): two round trips, with no
# hand-over between the loop and a thread in between.  The pool then returns
# the connection with a rollback of its own, which would be a third round trip
# for a transaction already ended.  The adapted connection skips exactly that one rollback: the
# flag is set by the read's own rollback and cleared by any cursor opened
# through SQLAlchemy, so any statement SQLAlchemy runs is rolled back as always.

_CLEAN = "_dmitems_clean"


def _install_clean_rollback(dmasync: Any) -> None:
    connection_cls = dmasync.AsyncAdapt_dmasync_connection
    rollback = connection_cls.rollback

    def rollback_unless_clean(self: Any) -> None:
        if not self._connection.__dict__.pop(_CLEAN, False):
            rollback(self)

    def clearing(open_cursor: Callable[..., Any]) -> Callable[..., Any]:
        def opened_by_sqlalchemy(self: Any, *args: Any, **kwargs: Any) -> Any:
            self._connection.__dict__.pop(_CLEAN, None)
            return open_cursor(self, *args, **kwargs)

        return opened_by_sqlalchemy

    connection_cls.rollback = rollback_unless_clean
    connection_cls.cursor = clearing(connection_cls.cursor)
    connection_cls.ss_cursor = clearing(connection_cls.ss_cursor)


def read_then_rollback(adapted: Any, sql: str, arguments: list[Any]) -> list[Any]:
    """On a worker thread: one read on a pooled dm+dmAsync connection, its fetch, and the
    rollback that ends its transaction; the rows.

    ``adapted`` is SQLAlchemy's adapted dmAsync connection; the caller holds it
    (the read relay, :mod:`dmitems.db.relay`).  If the statement fails, nothing
    is rolled back here: the pool's rollback on return does it.
    """
    driver = adapted._connection
    raw = driver.raw
    # Clean only once this read's own rollback is done: if it fails on the way, the
    # pool's rollback on return must run, whatever an earlier read on this checkout did.
    driver.__dict__.pop(_CLEAN, None)
    cursor = raw.cursor()
    try:
        cursor.execute(sql, arguments)
        rows = list(cursor.fetchall()) if cursor.description else []
    finally:
        cursor.close()
    raw.rollback()
    driver.__dict__[_CLEAN] = True
    return rows


# -- executor sizing ------------------------------------------------------------

_sizing: dict[str, Any] = {}


def executor_threads(settings: Settings) -> int:
    """Threads the async DM driver needs: the configured number, or pool capacity + margin."""
    if settings.dm_executor_threads:
        return settings.dm_executor_threads
    capacity = settings.pool_capacity
    return capacity + max(4, capacity // 4)


def default_executor_size(loop: asyncio.AbstractEventLoop) -> int:
    """Worker threads of the loop's default executor (the upstream default if none yet)."""
    executor = getattr(loop, "_default_executor", None)
    if isinstance(executor, concurrent.futures.ThreadPoolExecutor):
        return int(executor._max_workers)
    return min(32, (os.cpu_count() or 1) + 4)


def size_executor(settings: Settings, loop: asyncio.AbstractEventLoop | None = None) -> int:
    """Give the running loop a default executor of at least :func:`executor_threads`.

    An executor that is already as big is kept; a smaller one is replaced (and shut
    down without waiting).  Returns the size now in effect.
    """
    loop = loop or asyncio.get_running_loop()
    wanted = executor_threads(settings)
    current = default_executor_size(loop)
    if current >= wanted and getattr(loop, "_default_executor", None) is not None:
        _sizing.update(threads=current, wanted=wanted, replaced=False)
        return current
    old = getattr(loop, "_default_executor", None)
    loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=wanted, thread_name_prefix="dmitems-dm")
    )
    if old is not None:
        old.shutdown(wait=False)
    log.debug("DM compat: loop default executor sized %d -> %d threads", current, wanted)
    _sizing.update(threads=wanted, wanted=wanted, replaced=True)
    return wanted


async def start_executor_threads(loop: asyncio.AbstractEventLoop | None = None) -> int:
    """Start every thread of the loop's default executor now, from a worker thread.

    ``ThreadPoolExecutor`` starts threads lazily, inside ``submit`` -- that is, on
    the event loop thread, which waits for each new thread to come up.  Thirty
    concurrent logins would start thirty threads there.  Starting them all before
    traffic, from a worker, keeps that off the loop.  Returns the threads running.
    """
    loop = loop or asyncio.get_running_loop()
    executor = getattr(loop, "_default_executor", None)
    if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
        return 0
    size = int(executor._max_workers)

    def start_all() -> int:
        others = size - 1
        barrier = threading.Barrier(others) if others else None

        def hold() -> None:
            if barrier is not None:
                try:
                    barrier.wait(timeout=10)
                except threading.BrokenBarrierError:
                    pass

        futures = [executor.submit(hold) for _ in range(others)]
        concurrent.futures.wait(futures, timeout=15)
        return len(executor._threads)

    return await loop.run_in_executor(None, start_all)


def _executor_status(defect: Defect) -> None:
    defect.present = True
    if _sizing:
        defect.status = PATCHED
        defect.detail = f"{_sizing['threads']} threads in this process"
    else:
        defect.status = PATCHED
        defect.detail = "applied when an async DM engine starts"
