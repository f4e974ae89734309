"""Hot single statements run straight on the async driver (asyncpg, aiosqlite, dmAsync).

SQLAlchemy's execution path (an execution context, the adapted cursor, a
greenlet hop, a ``CursorResult``) costs about 50 µs of CPU per statement, more
than asyncpg spends sending the query and decoding the row (about 40 µs);
switching the connection to autocommit and back costs 17 µs more.  On a
one-row API request that is a third of the server's CPU.  The API uses this
for its single-statement routes (see :mod:`dmitems.api.dependencies`); the
CLI, the importer and the benchmark do not.

:class:`DirectExecutor` runs a statement on the connection's driver connection
instead (asyncpg, aiosqlite), and :class:`RelayedReads` hands it to the
Database's read relay (DM), when all of these hold:

* the statement is one of :mod:`dmitems.statements`' cached hot statements,
  marked with the ``dmitems_direct`` execution option (the SQL is still
  written once there, and compiled by SQLAlchemy's own dialect, once);
* its compiled form needs nothing SQLAlchemy would add at execution time
  beyond its own bind processors (applied here): no Python-side defaults, no
  post-compile parameters; on
  asyncpg no result processors either (it decodes every column itself); on
  SQLite and DM only reads, with SQLAlchemy's own result processors applied
  (timestamps are text on SQLite), and on SQLite only with dmitems' aiosqlite
  adapter;
* the statement runs outside a transaction (the API's single-statement
  routes): asyncpg then runs it as its own transaction, exactly as
  SQLAlchemy's autocommit mode would; SQLite runs a read outside a transaction
  on its own, as it does for SQLAlchemy; on DM a worker thread runs the read,
  its fetch and the rollback that ends its implicit transaction in one call,
  on whichever pooled connection the relay has free
  (:mod:`dmitems.db.relay`, :func:`dmitems.db.dm_compat.read_then_rollback`).

Everything else goes through SQLAlchemy as before.  Driver errors come out as
SQLAlchemy's ``DBAPIError`` with the driver's exception as ``orig``, as they
would through SQLAlchemy, so the same error mapping applies; a connection the
driver reports broken is invalidated in the pool.  A query cancelled
mid-flight (the client went away) needs nothing on PostgreSQL: asyncpg cancels
it on the server and the connection is usable again (tests/test_direct.py).
On DM the read finishes on its thread and the relay gives the connection back
only then (tests/test_dm_direct.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dmitems.statements import DIRECT

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


class DirectRow:
    """A result row as the repository reads it one at a time: ``row._mapping``."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping


class DirectResult:
    """The part of SQLAlchemy's ``Result`` the repository's operations use.

    ``rows`` are tuple-like (asyncpg ``Record``s, or tuples): ``all()`` hands
    them out as they are, ``first()``/``one()`` as a :class:`DirectRow`.
    """

    __slots__ = ("_rows", "_keys")

    def __init__(self, rows: list[Any], keys: tuple[str, ...]) -> None:
        self._rows = rows
        self._keys = keys

    def keys(self) -> tuple[str, ...]:
        return self._keys

    def first(self) -> DirectRow | None:
        return DirectRow(dict(zip(self._keys, self._rows[0]))) if self._rows else None

    def one(self) -> DirectRow:
        from sqlalchemy.exc import MultipleResultsFound, NoResultFound

        if len(self._rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when exactly one was required")
        row = self.first()
        if row is None:
            raise NoResultFound("No row was found when one was required")
        return row

    def all(self) -> list[Any]:
        return self._rows

    def scalar_one(self) -> Any:
        return self.one()._mapping[self._keys[0]]

    def scalar(self) -> Any:
        """The first column of the first row, or None when there is no row."""
        return self._rows[0][0] if self._rows else None


class _Plan:
    __slots__ = ("sql", "names", "keys", "binds", "processors")

    def __init__(
        self,
        sql: str,
        names: tuple[str, ...],
        keys: tuple[str, ...],
        binds: list[Any],
        processors: list[Any],
    ) -> None:
        self.sql = sql
        self.names = names
        self.keys = keys
        # SQLAlchemy's bind processors per parameter (arrays: any sequence → list), or None.
        self.binds = binds if any(binds) else None
        # SQLAlchemy's result processors per column (SQLite: text → datetime), None if none.
        self.processors = processors if any(processors) else None

    def arguments(self, parameters: Mapping[str, Any]) -> list[Any]:
        """The driver's positional arguments, through SQLAlchemy's bind processors."""
        arguments = [parameters[name] for name in self.names]
        if self.binds is None:
            return arguments
        return [
            value if process is None else process(value)
            for process, value in zip(self.binds, arguments)
        ]

    def result(self, rows: Any) -> DirectResult:
        """The driver's rows, through SQLAlchemy's result processors."""
        processors = self.processors
        if processors is not None:
            rows = [
                tuple(value if process is None else process(value)
                      for process, value in zip(processors, row))
                for row in rows
            ]
        return DirectResult(rows, self.keys)


# (statement, parameter names, dialect key) -> plan, or None when not eligible.
_PLANS: dict[tuple[Any, tuple[str, ...], str], _Plan | None] = {}
_MAX_PLANS = 64
_DRIVERS = {"asyncpg": "numeric_dollar", "aiosqlite": "qmark", "dmasync": "qmark"}  # -> paramstyle


def _plan(statement: Any, parameters: Mapping[str, Any], dialect: Any) -> _Plan | None:
    key = (statement, tuple(parameters), f"{dialect.name}+{dialect.driver}")
    try:
        return _PLANS[key]
    except KeyError:
        pass
    try:
        plan = _compile_plan(statement, parameters, dialect)
    except Exception:  # noqa: BLE001 - anything unexpected: SQLAlchemy runs it, as always
        plan = None
    if len(_PLANS) >= _MAX_PLANS:  # only cached statements are marked; this is a safety net
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _compile_plan(statement: Any, parameters: Mapping[str, Any], dialect: Any) -> _Plan | None:
    """The plan for a statement the driver can run as SQLAlchemy compiled it, or None.

    Reads a few of the compiled form's attributes that SQLAlchemy uses itself
    at execution (``_bind_processors``, ``_result_columns``); if a release
    changes them, planning fails and the statement goes through SQLAlchemy.
    """
    compiled = statement.compile(dialect=dialect, column_keys=list(parameters))
    positions = tuple(compiled.positiontup or ())
    processors = [
        column.type._cached_result_processor(dialect, None) for column in compiled._result_columns
    ]
    usable = (
        _DRIVERS.get(dialect.driver) == dialect.paramstyle
        # asyncpg decodes every column itself; on SQLite and DM only reads, with SQLAlchemy's
        # result processors.
        and (dialect.driver != "asyncpg" or not any(processors))
        and (dialect.driver == "asyncpg" or _reads_only(compiled))
        and (dialect.driver != "aiosqlite" or _fast_sqlite())
        and set(positions) == set(parameters)
        and not getattr(compiled, "literal_execute_params", None)
        and not getattr(compiled, "post_compile_params", None)
        and not getattr(compiled, "insert_prefetch", None)
        and not getattr(compiled, "update_prefetch", None)
        and compiled._result_columns
    )
    if not usable:
        return None
    keys = tuple(column.keyname for column in compiled._result_columns)
    binds = [compiled._bind_processors.get(name) for name in positions]
    return _Plan(compiled.string, positions, keys, binds, processors)


class DirectExecutor:
    """Executes statements on a connection used outside any transaction: the marked hot
    ones straight on the driver, the rest through SQLAlchemy.

    For a connection checked out for this executor alone, on which nothing
    begins a transaction.  ``autocommit=True`` (PostgreSQL): statements through
    SQLAlchemy run in its ``AUTOCOMMIT`` mode, switched on before the first,
    and asyncpg autocommits each statement it runs outside a transaction.
    ``autocommit=False`` (SQLite, read-only routes): SQLite runs a read outside
    a transaction on its own, and SQLAlchemy's reads begin none there.  (DM's
    read-only routes use :class:`RelayedReads`; here everything on DM goes
    through SQLAlchemy.)
    """

    def __init__(self, connection: AsyncConnection, *, autocommit: bool) -> None:
        self.connection = connection
        self._autocommit = autocommit
        self._through_sqlalchemy = False  # once it has run a statement, it runs the rest

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if not self._through_sqlalchemy:
            if _marked(statement, parameters):
                result = await self._direct(statement, parameters or {})
                if result is not None:
                    return result
            self._through_sqlalchemy = True
            if self._autocommit:
                await self.connection.execution_options(isolation_level="AUTOCOMMIT")
        return await self.connection.execute(statement, parameters)

    async def _direct(self, statement: Any, parameters: Mapping[str, Any]) -> DirectResult | None:
        """The statement's result from the driver, or None when SQLAlchemy must run it."""
        sync = self.connection.sync_connection
        if sync is None or sync.invalidated or sync.in_transaction() or sync.engine.echo:
            return None  # (with database_echo on, every statement goes where it is logged)
        if sync.dialect.driver not in ("asyncpg", "aiosqlite"):
            return None
        plan = _plan(statement, parameters, sync.dialect)
        if plan is None:
            return None
        driver = sync.connection.driver_connection
        arguments = plan.arguments(parameters)
        try:
            if sync.dialect.driver == "asyncpg":
                rows: Any = await driver.fetch(plan.sql, *arguments)
            else:
                rows = await _sqlite_rows(driver, plan.sql, arguments)
                if rows is None:
                    return None
        except Exception as error:
            raise await self._failed(plan.sql, arguments, error) from error
        return plan.result(rows)

    async def _failed(self, sql: str, arguments: list[Any], error: Exception) -> Exception:
        """The driver's error as SQLAlchemy would raise it; a broken connection is invalidated.

        On asyncpg a connection is dropped from the pool when the error says it
        is gone or in doubt: a socket error, a connection-class SQLSTATE (08,
        57P0x), or a client-side interface error other than a bad argument
        (asyncpg reports a connection killed mid-query in more than one way).
        """
        from sqlalchemy import exc as sa_exc

        broken = False
        if self.connection.dialect.driver == "asyncpg":
            import asyncpg

            state = str(getattr(error, "sqlstate", "") or "")
            client_side = isinstance(
                error, (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError)
            )
            broken = (
                isinstance(error, OSError)
                or (client_side and not isinstance(error, ValueError))  # not a bad argument
                or (isinstance(error, asyncpg.PostgresError) and (
                    state.startswith("08") or state in ("57P01", "57P02", "57P03")
                ))
            )
        if broken:
            await self.connection.invalidate(error)
        return sa_exc.DBAPIError.instance(
            sql, arguments, error, Exception, connection_invalidated=broken
        )


class RelayedReads:
    """The store's connection and executor on DM's read-only routes: the marked hot reads
    go to the Database's read relay (:mod:`dmitems.db.relay`), which runs each on whatever
    pooled connection a worker thread has free; anything else opens this request's own
    connection, on first use, and runs through SQLAlchemy from then on.

    Each relayed read ends its own transaction, as the direct read did on one
    connection, so two reads of one request (a page and its total) were never
    one snapshot.  :meth:`close` gives back the connection, if one was opened.
    """

    def __init__(self, database: Any, relay: Any) -> None:
        self.dialect = relay.engine.dialect
        # With database_echo on, every statement goes where it is logged.
        self._echo = relay.engine.echo
        self._database = database
        self._relay = relay
        self._opened: Any = None  # (context manager, connection), once SQLAlchemy runs one

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if self._opened is None and not self._echo and _marked(statement, parameters):
            plan = _plan(statement, parameters or {}, self.dialect)
            if plan is not None:
                rows = await self._relay.read(plan.sql, plan.arguments(parameters or {}))
                return plan.result(rows)
        if self._opened is None:
            opening = self._database.connect()
            self._opened = (opening, await opening.__aenter__())
        return await self._opened[1].execute(statement, parameters)

    async def close(self) -> None:
        if self._opened is not None:
            opening, self._opened = self._opened[0], None
            await opening.__aexit__(None, None, None)


def _marked(statement: Any, parameters: Any) -> bool:
    """One of the hot statements, with named parameters (or none)."""
    return (parameters is None or isinstance(parameters, Mapping)) and bool(
        statement.get_execution_options().get(DIRECT)
    )


def _reads_only(compiled: Any) -> bool:
    return not (compiled.isinsert or compiled.isupdate or compiled.isdelete)


def _fast_sqlite() -> bool:
    from dmitems.db.aiosqlite_fast import fast_dbapi

    return fast_dbapi() is not None


async def _sqlite_rows(driver: Any, sql: str, arguments: list[Any]) -> list[Any] | None:
    """A read on aiosqlite's thread, as dmitems' adapter runs it; None inside a transaction."""
    from dmitems.db.aiosqlite_fast import _execute, _in_turn

    if driver.in_transaction:
        return None
    _, rows, _, _ = await _in_turn(
        driver, lambda: driver._execute(_execute, driver._conn, sql, arguments)
    )
    return rows  # type: ignore[no-any-return]
