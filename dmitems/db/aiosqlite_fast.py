"""SQLAlchemy's aiosqlite adapter, with one worker-thread call per statement.

aiosqlite runs every sqlite3 call on the connection's own thread, and each call
is a round trip between that thread and the event loop (a queue put, a thread
wake-up, a ``call_soon_threadsafe``, a loop wake-up).  SQLAlchemy's adapter
makes four per statement (``cursor``, ``execute``, ``fetchall``, ``close``),
plus one for ``commit`` and one for the pool's rollback-on-return, even when
SQLite has no transaction open: six per single-statement request.  Under load
each round trip waits for a turn of a busy event loop.

This adapter keeps SQLAlchemy's classes and changes two things:

* ``execute``/``executemany`` open a cursor, run, fetch every row and close the
  cursor in **one** call on the connection's thread (rows are buffered, as
  SQLAlchemy's adapter buffers them too; server-side cursors are left alone);
* ``commit``/``rollback`` skip the round trip when SQLite says no transaction
  is open (``sqlite3.Connection.in_transaction``, i.e. ``!sqlite3_get_autocommit``):
  sqlite3's own ``commit``/``rollback`` do nothing in that state, so the result
  is the same.  A read is then one round trip, a single-statement write two;
* at most :data:`IN_FLIGHT` statements (one per core) run on the connections'
  threads at once, first come first served.  sqlite3 hands the GIL back and forth
  for every row it steps through; with 20-30 pooled connections all fetching,
  the threads spend their time passing the GIL around (measured on 2 cores:
  870 → 1,200 pages of 100 rows per second with the limit).  Only statements
  that start outside a transaction wait for a turn: a connection inside one may
  hold SQLite's write lock, and must never queue behind statements waiting for it.

It is passed to ``create_async_engine(module=...)`` (SQLAlchemy's documented way
to supply the DB-API module), so nothing global is patched.  It is used only
when the installed aiosqlite and SQLAlchemy have the pieces it builds on
(:func:`fast_dbapi` returns None otherwise, and the stock adapter is used).
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

# How many statements run on aiosqlite threads at once, per event loop: one per core.
IN_FLIGHT = max(2, os.cpu_count() or 2)
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def _in_turn(raw: Any, call: Callable[[], Awaitable[Any]]) -> Any:
    if raw.in_transaction:  # may hold the write lock: never waits behind others
        return await call()
    loop = asyncio.get_running_loop()
    turn = _turns.get(loop)
    if turn is None:
        turn = _turns[loop] = asyncio.Semaphore(IN_FLIGHT)
    async with turn:
        return await call()


def _execute(connection: sqlite3.Connection, operation: str, parameters: Any) -> tuple[Any, ...]:
    """Runs on aiosqlite's thread: execute, fetch everything, close; one call."""
    cursor = connection.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


def _executemany(connection: sqlite3.Connection, operation: str, parameters: Any) -> tuple[int, int]:
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, parameters)
        return cursor.lastrowid, cursor.rowcount  # type: ignore[return-value]
    finally:
        cursor.close()


def _supported() -> bool:
    try:
        import aiosqlite
        from sqlalchemy.dialects.sqlite import aiosqlite as adapter
    except ImportError:
        return False
    connection = aiosqlite.Connection
    return (
        callable(getattr(connection, "_execute", None))
        and isinstance(getattr(connection, "in_transaction", None), property)
        and isinstance(getattr(connection, "_conn", None), property)
        and all(
            hasattr(adapter, name)
            for name in (
                "AsyncAdapt_aiosqlite_cursor",
                "AsyncAdapt_aiosqlite_connection",
                "AsyncAdapt_aiosqlite_dbapi",
            )
        )
    )


@functools.cache
def fast_dbapi() -> Any | None:
    """The DB-API module for ``create_async_engine(module=...)``, or None when unsupported."""
    if not _supported():
        return None
    import aiosqlite
    from sqlalchemy.dialects.sqlite import aiosqlite as adapter

    class Cursor(adapter.AsyncAdapt_aiosqlite_cursor):
        __slots__ = ()

        def execute(self, operation: Any, parameters: Any = None) -> Any:
            try:
                raw = self._connection
                description, rows, lastrowid, rowcount = self.await_(
                    _in_turn(raw, lambda: raw._execute(_execute, raw._conn, operation, parameters))
                )
            except Exception as error:
                self._adapt_connection._handle_exception(error)
            if description:
                self.description = description
                self.lastrowid = self.rowcount = -1
                self._rows = deque(rows)
            else:
                self.description = None
                self.lastrowid = lastrowid
                self.rowcount = rowcount

        def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
            try:
                raw = self._connection
                lastrowid, rowcount = self.await_(
                    _in_turn(raw, lambda: raw._execute(_executemany, raw._conn, operation, seq_of_parameters))
                )
            except Exception as error:
                self._adapt_connection._handle_exception(error)
            self.description = None
            self.lastrowid = lastrowid
            self.rowcount = rowcount

    class Connection(adapter.AsyncAdapt_aiosqlite_connection):
        __slots__ = ()

        def cursor(self, server_side: bool = False) -> Any:
            return super().cursor(server_side) if server_side else Cursor(self)

        def _in_transaction(self) -> bool:
            try:
                return bool(self._connection.in_transaction)
            except Exception:
                return True  # closed or broken: let the real call report it

        def commit(self) -> None:
            if self._in_transaction():
                super().commit()

        def rollback(self) -> None:
            if self._in_transaction():
                super().rollback()

    class DBAPI(adapter.AsyncAdapt_aiosqlite_dbapi):
        def connect(self, *arg: Any, **kw: Any) -> Any:
            connection = super().connect(*arg, **kw)
            if type(connection) is adapter.AsyncAdapt_aiosqlite_connection:
                connection = Connection(self, connection._connection)
            return connection

    return DBAPI(aiosqlite, sqlite3)
