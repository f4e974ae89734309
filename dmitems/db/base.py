"""What every backend provides: URLs for both drivers, engine options, hooks, error mapping."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from typing import TYPE_CHECKING, Any, ClassVar

from dmitems.errors import (
    DatabaseUnavailable,
    DatabaseUnreachable,
    DmitemsError,
    UnsupportedDatabase,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from dmitems.config import Settings


def first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


class Backend:
    """Backend quirks, one subclass per database.  Instances hold no state."""

    name: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]
    async_driver: ClassVar[str]
    sync_driver: ClassVar[str]
    # Python modules each driver needs, checked before an engine is built.
    async_modules: ClassVar[tuple[str, ...]]
    sync_modules: ClassVar[tuple[str, ...]]
    install_hint: ClassVar[str]
    # Whether a single-row create can fetch the new row in the same round trip.
    create_returning: ClassVar[bool] = True
    # Whether a batch create can send its rows as three arrays in one statement (unnest).
    array_insert: ClassVar[bool] = False
    # Whether write transactions in one process should take turns (Database's write gate):
    # for databases with a single write lock that waiting writers poll for (SQLite).
    serialize_writes: ClassVar[bool] = False

    def urls(self, url: URL) -> tuple[URL, URL]:
        """The (async, sync) pair for ``url``."""
        return (
            url.set(drivername=f"{self.name}+{self.async_driver}"),
            url.set(drivername=f"{self.name}+{self.sync_driver}"),
        )

    def check_driver(self, is_async: bool) -> None:
        modules = self.async_modules if is_async else self.sync_modules
        missing = [module for module in modules if importlib.util.find_spec(module) is None]
        if missing:
            raise UnsupportedDatabase(
                f"{self.name} driver not installed ({', '.join(missing)}): {self.install_hint}"
            )

    def prepare(self) -> None:
        """Runs once before the first engine of this backend is built."""

    def engine_options(self, settings: Settings, is_async: bool) -> dict[str, Any]:
        return {
            "echo": settings.database_echo,
            "pool_size": settings.database_pool_size,
            "max_overflow": settings.database_max_overflow,
            "pool_timeout": settings.database_pool_timeout,
            "pool_recycle": settings.database_pool_recycle,
            "pool_pre_ping": settings.database_pool_pre_ping,
        }

    def configure(self, engine: Engine, settings: Settings) -> None:
        """Install event hooks on a (sync or async-wrapped) engine."""

    async def prepare_loop(self, settings: Settings) -> None:
        """Runs on the event loop before an async engine is used (e.g. executor sizing)."""

    async def prepare_schema(self, connection: Any) -> dict[str, Any]:
        """Runs in init-db's transaction before CREATE TABLE; returns facts for its report."""
        return {}

    def classify(self, exc: BaseException, target: str) -> DmitemsError | None:
        """Map a driver error to a dmitems error, or None to fall through."""
        return None

    def classify_network(self, exc: BaseException, target: str) -> DmitemsError | None:
        """Errors raised below the DB-API, shared by every driver."""
        if isinstance(exc, socket.gaierror):
            return DatabaseUnreachable(f"database unreachable at {target}: unknown host")
        # asyncio.TimeoutError is its own class before Python 3.11 (asyncpg's connect timeout).
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError, ConnectionError)):
            reason = first_line(str(exc)) or type(exc).__name__
            return DatabaseUnreachable(f"database unreachable at {target}: {reason}")
        if isinstance(exc, OSError):
            reason = exc.strerror or first_line(str(exc)) or type(exc).__name__
            return DatabaseUnreachable(f"database unreachable at {target}: {reason}")
        return None

    def busy(self, target: str) -> DatabaseUnavailable:
        return DatabaseUnavailable(f"database busy at {target}; try again")
