"""One URL in, a sync and an async engine out, with errors mapped to dmitems errors.

Every connection dmitems opens comes from here (:meth:`Database.begin`,
:meth:`Database.connect` and their ``sync_`` twins), opened and closed the
ordinary SQLAlchemy way, and every statement on it is run by one of the two
executors in :mod:`dmitems.repository` (or the importer's bulk insert).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from dmitems.config import Settings, mask_url
from dmitems.db.base import Backend, first_line
from dmitems.db.dm import DMBackend
from dmitems.db.postgresql import PostgreSQLBackend
from dmitems.db.sqlite import SQLiteBackend
from dmitems.errors import DatabaseUnavailable, DmitemsError, UnsupportedDatabase
from dmitems.models import TABLE_OPTION, items_table

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

BACKENDS: tuple[Backend, ...] = (SQLiteBackend(), PostgreSQLBackend(), DMBackend())
SUPPORTED_SCHEMES = "sqlite+aiosqlite://, postgresql+asyncpg:// or dm+dmAsync://"


def backend_for(url: URL) -> Backend:
    scheme = url.drivername.lower()
    for backend in BACKENDS:
        if scheme in backend.schemes:
            return backend
    raise UnsupportedDatabase(
        f"unsupported database URL scheme '{url.drivername}'; use {SUPPORTED_SCHEMES}"
    )


def parse_url(raw: str, password: str | None = None) -> URL:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        # Not echoed: an unparsable URL may hide a password where masking cannot find it.
        raise UnsupportedDatabase(
            f"cannot parse the database URL; expected e.g. {SUPPORTED_SCHEMES}"
        ) from None
    if password:
        url = url.set(password=password)
    return url


class Database:
    """The database named by the settings: both engines, built lazily, and error mapping.

    ``async with db.begin() as conn`` and ``with db.sync_begin() as conn`` give a
    connection inside a transaction; any driver error raised inside the block
    comes out as a :class:`~dmitems.errors.DmitemsError` with a safe message.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # [database] table and schema: every statement on both engines uses this table
        # (an engine execution option, read back by dmitems.models.table_of).
        self.table = items_table(settings.database_table, settings.database_schema)
        password = (
            settings.database_password.get_secret_value() if settings.database_password else None
        )
        url = parse_url(settings.database_url, password)
        self.backend = backend_for(url)
        self.async_url, self.sync_url = self.backend.urls(url)
        # mask_url also hides secret-looking query parameters (?password=...).
        self.target = mask_url(self.async_url.render_as_string(hide_password=True))
        self._async_engine: AsyncEngine | None = None
        self._sync_engine: Engine | None = None
        self._secrets = settings.secrets()
        # Write gates (backend.serialize_writes): one write transaction at a time in this
        # process.  The asyncio one is made with the async engine (it belongs to a loop).
        self._sync_gate = threading.Lock() if self.backend.serialize_writes else None
        self._async_gate: Any = None
        # Pool slots handed out in arrival order (made with the async engine, see _take_slot).
        self._async_slots: Any = None
        # The sync twin of the slots (made with the sync engine, see _take_sync_slot).
        self._sync_slots: Any = None

    @property
    def name(self) -> str:
        return self.backend.name

    # -- engines -----------------------------------------------------------

    async def async_engine(self) -> AsyncEngine:
        if self._async_engine is None:
            from sqlalchemy.ext.asyncio import create_async_engine

            self.backend.check_driver(is_async=True)
            self.backend.prepare()
            await self.backend.prepare_loop(self.settings)
            with self.translate_errors():
                engine = create_async_engine(
                    self.async_url,
                    execution_options={TABLE_OPTION: self.table},
                    **self.backend.engine_options(self.settings, is_async=True),
                )
            self.backend.configure(engine.sync_engine, self.settings)
            import asyncio

            from dmitems.db.slots import Slots

            if self.backend.serialize_writes:
                self._async_gate = asyncio.Lock()
            self._async_slots = Slots(self.settings.pool_capacity)
            self._async_engine = engine
        return self._async_engine

    def sync_engine(self) -> Engine:
        if self._sync_engine is None:
            from sqlalchemy import create_engine

            self.backend.check_driver(is_async=False)
            self.backend.prepare()
            with self.translate_errors():
                engine = create_engine(
                    self.sync_url,
                    execution_options={TABLE_OPTION: self.table},
                    **self.backend.engine_options(self.settings, is_async=False),
                )
            self.backend.configure(engine, self.settings)
            from dmitems.db.slots import NO_LINE, SyncSlots

            fifo = self.settings.database_pool_queue == "fifo"
            self._sync_slots = SyncSlots(self.settings.pool_capacity) if fifo else NO_LINE
            self._sync_engine = engine
        return self._sync_engine

    async def warm_up(self, connections: int | None = None) -> float:
        """Open ``connections`` (default: pool_size) pooled connections at once; return seconds.

        Every new DM connection costs a full login, so a server warms its pool
        before taking traffic, and the benchmark reports connection time apart.
        """
        import asyncio
        import time

        from sqlalchemy import text

        count = connections or self.settings.database_pool_size
        engine = await self.async_engine()
        started = time.perf_counter()
        async with contextlib.AsyncExitStack() as stack:
            with self.translate_errors():
                opened = await asyncio.gather(
                    *(stack.enter_async_context(engine.connect()) for _ in range(count))
                )
                await opened[0].execute(text("SELECT 1"))
        return time.perf_counter() - started

    async def dispose(self) -> None:
        if self._async_engine is not None:
            await self._async_engine.dispose()
            self._async_engine = None
            self._async_gate = self._async_slots = None
        self.sync_dispose()

    def sync_dispose(self) -> None:
        if self._sync_engine is not None:
            self._sync_engine.dispose()
            self._sync_engine = None
            self._sync_slots = None

    # -- connections -------------------------------------------------------

    @contextlib.asynccontextmanager
    async def begin(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        """An async connection in a transaction, committed on success.

        ``write=True`` says the transaction writes.  Where the database has a single
        write lock (SQLite), it first waits for its turn behind this process's other
        write transactions (at most ``busy_timeout``, then DatabaseUnavailable), so
        writers queue in order instead of sleep-polling SQLite's lock; the turn is
        taken before a pooled connection is, so waiting writers hold no connection.
        """
        engine = await self.async_engine()
        gate = self._async_gate if write else None
        if gate is not None:
            import asyncio

            try:
                # wait_for, not asyncio.timeout: dmitems supports Python 3.10.
                await asyncio.wait_for(gate.acquire(), self.settings.database_busy_timeout)
            except asyncio.TimeoutError:
                raise self.backend.busy(self.target) from None
        slots = await self._take_slot()
        try:
            with self.translate_errors():
                async with engine.begin() as connection:
                    yield connection
        finally:
            slots.give()
            if gate is not None:
                gate.release()

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """An async connection; the caller manages transactions."""
        engine = await self.async_engine()
        slots = await self._take_slot()
        try:
            with self.translate_errors():
                async with engine.connect() as connection:
                    yield connection
        finally:
            slots.give()

    async def _take_slot(self) -> Any:
        """Wait, first come first served, for one of the pool's connections to be free.

        SQLAlchemy's async pool waits on an ``asyncio.Queue``, which is not FIFO under
        contention: a waiter woken for a returned connection is often beaten to it by a
        newcomer and goes back to the end of the line, so a few requests wait many
        times longer than the rest.  Slots for the pool's capacity (see
        :mod:`dmitems.db.slots`), taken before the pool is asked, keep the line in
        order; waiting longer than ``pool_timeout`` fails as the pool would.  Returns
        the slots; ``give()`` after the connection is closed.
        """
        slots = self._async_slots
        if self.settings.database_pool_queue == "native":
            from dmitems.db.slots import NO_LINE

            return NO_LINE
        try:
            await slots.take(self.settings.database_pool_timeout)
        except TimeoutError:
            raise self._pool_exhausted() from None
        return slots

    @contextlib.contextmanager
    def sync_begin(self, *, write: bool = False) -> Iterator[Connection]:
        """A sync connection in a transaction, committed on success; ``write`` as in
        :meth:`begin` (the turn is taken with a thread lock)."""
        engine = self.sync_engine()
        gate = self._sync_gate if write else None
        if gate is not None and not gate.acquire(timeout=self.settings.database_busy_timeout):
            raise self.backend.busy(self.target)
        try:
            slots = self._take_sync_slot()
            try:
                with self.translate_errors():
                    with engine.begin() as connection:
                        yield connection
            finally:
                slots.give()
        finally:
            if gate is not None:
                gate.release()

    @contextlib.contextmanager
    def sync_connect(self) -> Iterator[Connection]:
        """A sync connection; the caller manages transactions."""
        engine = self.sync_engine()
        slots = self._take_sync_slot()
        try:
            with self.translate_errors():
                with engine.connect() as connection:
                    yield connection
        finally:
            slots.give()

    def _take_sync_slot(self) -> Any:
        """:meth:`_take_slot` for threads: the sync pool's ``QueuePool`` lets newcomers
        barge past woken waiters just as the async pool does, so with ``pool_queue =
        "fifo"`` sync callers wait in the same kind of line (:class:`SyncSlots`).
        Returns the slots; ``give()`` after the connection is closed."""
        slots = self._sync_slots
        try:
            slots.take(self.settings.database_pool_timeout)
        except TimeoutError:
            raise self._pool_exhausted() from None
        return slots

    # -- errors ------------------------------------------------------------

    @contextlib.contextmanager
    def translate_errors(self) -> Iterator[None]:
        try:
            yield
        except DmitemsError:
            raise
        except Exception as exc:
            mapped = self.translate(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def translate(self, exc: BaseException) -> DmitemsError | None:
        """The dmitems error for a driver or pool error, with secrets scrubbed."""
        from sqlalchemy import exc as sa_exc

        mapped: DmitemsError | None = None
        if isinstance(exc, sa_exc.TimeoutError):
            mapped = self._pool_exhausted()
        elif isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
            mapped = self.backend.classify(exc.orig, self.target) or self.backend.classify_network(
                exc.orig, self.target
            )
            if mapped is None and exc.connection_invalidated:
                mapped = DatabaseUnavailable(
                    f"connection to {self.target} lost: {first_line(str(exc.orig))}"
                )
        elif isinstance(exc, sa_exc.NoSuchModuleError):
            mapped = UnsupportedDatabase(
                f"no SQLAlchemy dialect for {self.async_url.drivername}: {self.backend.install_hint}"
            )
        else:
            mapped = self.backend.classify(exc, self.target) or self.backend.classify_network(
                exc, self.target
            )
        if mapped is not None:
            mapped.message = self.redact(mapped.message)
        return mapped

    def _pool_exhausted(self) -> DatabaseUnavailable:
        return DatabaseUnavailable(
            f"no free database connection within {self.settings.database_pool_timeout:g} s "
            f"(pool_size={self.settings.database_pool_size}, "
            f"max_overflow={self.settings.database_max_overflow})"
        )

    def redact(self, text: str) -> str:
        from dmitems.errors import redact

        return redact(text, self._secrets)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend.name,
            "url": self.target,
            "async_driver": self.backend.async_driver,
            "sync_driver": self.backend.sync_driver,
        }
