"""dmitems' ``dm+dmAsync`` dialect: dmSQLAlchemy's async dialect with its defects overridden.

dmSQLAlchemy 2.0.17 with dmAsync 1.0.0 cannot serve an async application as
shipped (the catalogue is :mod:`dmitems.db.dm_defects`).  This module
subclasses the dialect and its adapted connection and cursor and overrides
exactly what is broken; :func:`dmitems.db.dm.register_dialect` registers
:class:`DMDialect` for ``dm+dmAsync`` through ``sqlalchemy.dialects.registry``.
The installed packages are never modified.  Each override names its defect
key; when a release fixes one, ``dmitems doctor`` reports it ``absent`` (the
probes at the end run upstream code on stand-in objects and change nothing)
and the override can go.  Private attributes of the DM packages are used only
here, each next to the defect it works around.

Costs: a statement and the fetch of its rows are one call on a worker thread
of the loop's default executor; commit, rollback, login (with the two session
queries) and logout are one call each.  Nothing that waits for the server runs
on the loop thread, except upstream's ``INSERT ... RETURNING ... INTO``, which
dmitems never sends.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import inspect
import json
import threading
import types
from typing import Any

from dmSQLAlchemy import dmasync as upstream
from dmSQLAlchemy.dmpython import DMDialect_dmPython
from sqlalchemy import exc
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_cursor
from sqlalchemy.engine.interfaces import AdaptedConnection
from sqlalchemy.util import await_only
from sqlalchemy.util.concurrency import in_greenlet

# What the upstream dialect runs on every new connection, in this order.
SETUP_QUERIES = ("SELECT MODE$ FROM V$instance;", "SELECT SET_SESSION_IDENTITY_CHECK(1);")
# Connect options only upstream's own connect() understands (compatibility modes that
# change the dialect, creator hooks); dmitems passes none of them.
UPSTREAM_ONLY_OPTIONS = frozenset(
    {"compatible_mode", "parse_type", "add_quote_all", "cursorclass", "async_creator_fn",
     "async_fallback"}
)


async def _in_worker(function: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


class DMCursor(upstream.AsyncAdapt_dmasync_cursor):
    """A buffered cursor: execute and fetch run together in one worker call."""

    __slots__ = ()

    # slots-shadowing: upstream's class attribute ``_cursor = None`` hides the slot that
    # SQLAlchemy's adapter base keeps the driver cursor in ("'_cursor' is read-only").
    _cursor = vars(AsyncAdapt_dbapi_cursor)["_cursor"]

    # fetch-on-loop: upstream fetches from the raw driver cursor on the loop thread; the
    # rows are already buffered by execute() here, so SQLAlchemy's buffer reads serve them.
    fetchone = AsyncAdapt_dbapi_cursor.fetchone
    fetchmany = AsyncAdapt_dbapi_cursor.fetchmany
    fetchall = AsyncAdapt_dbapi_cursor.fetchall

    def execute(self, operation: Any, parameters: Any = None) -> None:
        # fetch-on-loop, dead-pre-ping: upstream returns dmAsync's execute coroutine without
        # awaiting it, so nothing runs unless the caller awaits the result (pre-ping never does).
        self._adapt_connection.in_transaction = True
        self.await_(self._execute_and_fetch(operation, parameters))

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        # executemany-returning: dmAsync's Cursor.executemany throws the driver's result away.
        self._adapt_connection.in_transaction = True
        raw = self._cursor.raw
        return self.await_(self._locked(raw.executemany, operation, seq_of_parameters))

    async def _execute_and_fetch(self, operation: Any, parameters: Any) -> None:
        raw = self._cursor.raw
        buffered = not self.server_side

        def run() -> Any:
            if parameters is None:
                raw.execute(operation)
            else:
                raw.execute(operation, parameters)
            return raw.fetchall() if buffered and raw.description else None

        rows = await self._locked(run)
        if buffered:
            self._rows = collections.deque(rows or ())

    async def _locked(self, function: Any, *args: Any) -> Any:
        # One statement at a time per connection, as SQLAlchemy's adapters do.
        async with self._adapt_connection._execute_mutex:
            return await _in_worker(function, *args)


class DMConnection(upstream.AsyncAdapt_dmasync_connection):
    """The adapted connection; ``in_transaction`` says whether a transaction may be open.

    DM opens one with the first statement after a commit or rollback; every statement
    sent through this connection's cursors sets the flag.  A commit or rollback with
    nothing to end (the pool's reset after ``begin()`` committed) then costs no round
    trip, as with SQLAlchemy's asyncpg adapter.  Statements sent on
    ``driver_connection`` directly are not seen: end those yourself.
    """

    __slots__ = ("in_transaction",)

    # slots-shadowing: upstream's class attribute ``_connection = None`` hides the slot of
    # SQLAlchemy's AdaptedConnection, and every connect failed with "'_connection' is
    # read-only".  The slot itself is put back in front.
    _connection = vars(AdaptedConnection)["_connection"]
    _cursor_cls = DMCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.in_transaction = True  # the session queries ran on it

    def cursor(self, server_side: bool = False) -> DMCursor:
        return DMCursor(self)

    def commit(self) -> None:
        if self.in_transaction:
            super().commit()
            self.in_transaction = False

    def rollback(self) -> None:
        if self.in_transaction:
            super().rollback()
            self.in_transaction = False

    def close(self) -> None:
        # blocking-connect: dmAsync's Connection.close() logs out with the driver on the
        # calling thread, the event loop's.  Outside a greenlet (garbage collection) there
        # is no loop to wait on, and the driver closes where it is.
        raw = self._connection.raw
        if in_greenlet():
            self.await_(_in_worker(raw.close))
        else:
            raw.close()


def _open_session(loop: asyncio.AbstractEventLoop, params: dict[str, Any]) -> Any:
    """In a worker thread: log in through dmAsync, then run the dialect's setup queries."""
    import dmAsync

    driver = dmAsync.connect(loop=loop, **params)
    raw = driver.raw
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
    return driver


def _close_abandoned(login: asyncio.Future[Any]) -> None:
    # A cancelled connect still finishes its login in the worker: close what it opened.
    if not login.cancelled() and login.exception() is None:
        try:
            login.result().raw.close()
        except Exception:  # noqa: BLE001 - best effort on a connection nobody holds
            pass


async def _log_in(params: dict[str, Any]) -> Any:
    loop = asyncio.get_running_loop()
    login = loop.run_in_executor(None, _open_session, loop, params)
    try:
        return await asyncio.shield(login)
    except asyncio.CancelledError:
        login.add_done_callback(_close_abandoned)
        raise


def _driver_value(value: Any, in_array: bool) -> Any:
    # As upstream binds them: lists as JSON text and, in executemany, datetimes as text.
    if type(value) is list:
        return json.dumps(value) if value else ""
    if in_array and type(value) is datetime.datetime:
        return value.strftime("%Y-%m-%d %H:%M:%S.%f %Z").replace("UTC", "")
    return value


def _driver_values(parameters: Any, in_array: bool = False) -> Any:
    if not isinstance(parameters, (list, tuple)):
        return parameters
    return [_driver_value(value, in_array) for value in parameters]


class DMDialect(upstream.DMDialectAsync_dmasync):
    """``dm+dmAsync`` for dmitems: upstream's async dialect with its defects overridden."""

    supports_statement_cache = True
    # executemany-returning: dmPython returns no rows from an array insert and dmAsync
    # drops what it returns, so bulk inserts with RETURNING failed with a TypeError.
    insert_executemany_returning = False
    insert_executemany_returning_sort_by_parameter_order = False

    def __init__(
        self,
        auto_convert_lobs: bool = True,
        coerce_to_decimal: bool = True,
        arraysize: int | None = None,
        encoding_errors: str | None = None,
        thick_mode: Any = None,
        **kwargs: Any,
    ) -> None:
        # dialect-kwargs: upstream's DMDialect_dmAsync.__init__ hands these on positionally,
        # so arraysize lands in `autocommit` and encoding_errors in `connection_timeout`.
        # The sync dialect's __init__ is called with keywords instead.
        if arraysize is not None:
            kwargs["arraysize"] = arraysize
        DMDialect_dmPython.__init__(
            self, auto_convert_lobs=auto_convert_lobs, coerce_to_decimal=coerce_to_decimal,
            **kwargs,
        )
        self.encoding_errors = encoding_errors
        # Upstream's get_isolation_level reads the last connection opened from here.
        self.async_connect = None

    @classmethod
    def get_async_dialect_cls(cls, url: Any) -> type[DMDialect]:
        return cls

    def connect(self, *cargs: Any, **cparams: Any) -> DMConnection:
        # blocking-connect: upstream logs in (dmAsync.connect calls dmPython.connect) and
        # runs SETUP_QUERIES on the event loop thread: the whole process waits for each login.
        refused = sorted(UPSTREAM_ONLY_OPTIONS.intersection(cparams))
        if cargs or refused:
            raise exc.ArgumentError(
                "dmitems' dm+dmAsync dialect does not take "
                + (", ".join(refused) if refused else "positional connect arguments")
            )
        params = {key: value for key, value in cparams.items() if key != "dsn"}
        if "database" in params:  # the URL path names the schema
            params["schema"] = params.pop("database")
        params["connection_timeout"] = params.get("connection_timeout") or 0
        driver = await_only(_log_in(params))
        raw = driver.raw
        # What upstream's connect() records about the session, read from its attributes.
        self.encoding = self.get_conn_local_code(raw)
        self.case_sensitive = raw.str_case_sensitive
        self.requires_name_normalize = bool(self.case_sensitive)
        self.async_connect = driver
        return DMConnection(self.dbapi, driver)

    def do_execute(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> Any:
        # returning-into-on-loop: upstream's INSERT ... RETURNING ... INTO path (the DM
        # compiler's private _dm_returning flag) stays upstream's; dmitems never takes it.
        if context is not None and context.out_parameters and getattr(
            context.compiled, "_dm_returning", False
        ):
            cursor._adapt_connection.in_transaction = True
            return super().do_execute(cursor, statement, parameters, context)
        # fetch-on-loop: upstream awaits what cursor.execute() returns; DMCursor has run it.
        cursor.execute(statement, _driver_values(parameters))
        if context is not None:
            context.cursor = cursor
        return cursor

    def dm_do_execute(
        self, cursor: Any, statement: Any, parameters: Any, context: Any = None
    ) -> Any:
        # fetch-on-loop: the dialect's own queries (rowid lookup, has_table) awaited the result.
        cursor.execute(statement, parameters)
        if context is not None:
            context.cursor = cursor
        return cursor

    def do_executemany(
        self, cursor: Any, statement: Any, parameters: Any, context: Any = None
    ) -> None:
        # executemany-appends-returning: upstream's adapter appends "RETURNING pk INTO ?" and
        # an out-bind to every row of a bulk insert, and throws the values away.
        rows = [_driver_values(row, in_array=True) for row in parameters]
        cursor.executemany(statement, rows)
        if context is not None:
            context.cursor = cursor


# -- probes: which defects the installed packages still have ----------------------
#
# Each runs upstream code on stand-in objects, or reads a class attribute; none
# changes an installed class.


def upstream_defects() -> dict[str, bool]:
    """Catalogue key -> whether the installed dmSQLAlchemy/dmAsync still have it."""
    import dmAsync

    lazy = _execute_is_lazy()
    return {
        "slots-shadowing": _shadows_slots(),
        "blocking-connect": not inspect.iscoroutinefunction(dmAsync.connect),
        "fetch-on-loop": lazy,
        "dead-pre-ping": lazy,
        "executemany-returning": _executemany_drops_result(dmAsync),
        "executemany-appends-returning": _appends_returning(),
        "dialect-kwargs": upstream.DMDialectAsync_dmasync(arraysize=7).arraysize != 7,
    }


def _shadows_slots() -> bool:
    # slots-shadowing: a class attribute where SQLAlchemy's base has a slot.
    shadowing = (
        (upstream.AsyncAdapt_dmasync_cursor, "_cursor"),
        (upstream.AsyncAdapt_dmasync_connection, "_connection"),
    )
    return any(
        name in vars(cls) and not isinstance(vars(cls)[name], types.MemberDescriptorType)
        for cls, name in shadowing
    )


def _execute_is_lazy() -> bool:
    # fetch-on-loop: does upstream's cursor _execute_async return without running execute?
    ran: list[str] = []

    class Driver:
        description = None

        async def execute(self, *args: Any) -> None:
            ran.append("execute")

    probe = types.SimpleNamespace(
        _cursor=Driver(), server_side=False, _rows=collections.deque(),
        _adapt_connection=types.SimpleNamespace(_execute_mutex=asyncio.Lock()),
    )
    running = upstream.AsyncAdapt_dmasync_cursor._execute_async(probe, "SELECT 1", None)
    result: Any = None
    try:
        running.send(None)
    except StopIteration as done:
        result = done.value
    finally:
        running.close()
    if inspect.iscoroutine(result):
        result.close()
    return not ran and inspect.isawaitable(result)


def _executemany_drops_result(dmAsync: Any) -> bool:
    # executemany-returning: run dmAsync's Cursor.executemany over a stand-in driver
    # cursor (private _conn/_impl/_echo), on a loop of its own in a thread of its own.
    connection = types.SimpleNamespace(isexecuting=False, _waiter=None)
    connection._create_waiter = lambda name: None
    impl = types.SimpleNamespace(executemany=lambda operation, parameters: ["result"])
    cursor = types.SimpleNamespace(_conn=connection, _echo=False, _impl=impl)
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(dmAsync.Cursor.executemany(cursor, "INSERT", [])))
        except Exception:  # noqa: BLE001 - a changed signature: cannot tell, count it present
            outcome.append(None)

    thread = threading.Thread(target=run, name="dmitems-dm-probe")
    thread.start()
    thread.join(10)
    return not outcome or outcome[0] is None


def _appends_returning() -> bool:
    # executemany-appends-returning: what upstream's adapter sends for a plain bulk insert.
    from dmSQLAlchemy.extensions import DMDialect_Adapter

    sent: list[str] = []
    driver = types.SimpleNamespace(executemany=lambda statement, parameters: sent.append(statement))
    columns = types.SimpleNamespace(_all_columns=[object()])
    table = types.SimpleNamespace(primary_key=types.SimpleNamespace(c=columns))
    context = types.SimpleNamespace(
        out_parameters=None, invoked_statement=types.SimpleNamespace(table=table)
    )
    preparer = types.SimpleNamespace(format_table=lambda t: "T", format_column=lambda c: "ID")
    dialect = types.SimpleNamespace(identifier_preparer=preparer, do_normalize_name=str)
    try:
        DMDialect_Adapter().async_do_executemany_return(
            1, 1, dialect, driver, "INSERT INTO T (A) VALUES (?)", [[1]], context
        )
    except Exception:  # noqa: BLE001, S110 - await_only outside a greenlet, after sending
        pass
    return bool(sent) and "RETURNING" in sent[0].upper()
