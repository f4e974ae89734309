"""PostgreSQL: asyncpg for async, psycopg 3 for sync; errors mapped by SQLSTATE."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmitems.db.base import Backend, first_line
from dmitems.errors import (
    ConnectionLost,
    DatabaseUnavailable,
    DatabaseUnreachable,
    DmitemsError,
    IntegrityViolation,
    InvalidInput,
    LoginFailed,
    SchemaMissing,
    ValueTooLong,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from dmitems.config import Settings


class PostgreSQLBackend(Backend):
    name = "postgresql"
    schemes = (
        "postgres",
        "postgresql",
        "postgresql+asyncpg",
        "postgresql+psycopg",
        "postgresql+psycopg2",
    )
    async_driver = "asyncpg"
    sync_driver = "psycopg"
    async_modules = ("asyncpg",)
    sync_modules = ("psycopg",)
    install_hint = "pip install asyncpg 'psycopg[binary]'"
    array_insert = True

    def urls(self, url: URL) -> tuple[URL, URL]:
        """libpq parameters leave the asyncpg URL (see :mod:`dmitems.db.libpq`), and
        asyncpg-only ones leave the psycopg URL."""
        from dmitems.db import libpq

        async_query, sync_query = libpq.split_query(url.query)
        async_url, sync_url = super().urls(url.set(drivername="postgresql"))
        return async_url.set(query=async_query), sync_url.set(query=sync_query)

    def engine_options(self, settings: Settings, is_async: bool) -> dict[str, Any]:
        from sqlalchemy.engine import make_url

        from dmitems.db import libpq

        options = super().engine_options(settings, is_async)
        url = libpq.parse(make_url(settings.database_url).query)
        timeout = url.connect_timeout or settings.database_connect_timeout
        name = url.application_name or "dmitems"
        if is_async:
            arguments: dict[str, Any] = {
                "timeout": timeout,
                # UTC sessions: both drivers then hand back timestamps in UTC.
                "server_settings": {
                    **url.server_settings, "application_name": name, "timezone": "UTC"
                },
            }
            if url.ssl is not None:
                arguments["ssl"] = url.ssl
            if url.target_session_attrs is not None:
                arguments["target_session_attrs"] = url.target_session_attrs
            options["connect_args"] = arguments
        else:
            # The URL's libpq parameters reach libpq as they are; these are added to them.
            user_options = make_url(settings.database_url).query.get("options")
            options["connect_args"] = {
                # libpq takes whole seconds, and treats 1 as 2.
                "connect_timeout": max(2, round(timeout)),
                "application_name": name,
                "options": " ".join(
                    filter(None, (libpq.last(user_options or ""), "-c timezone=UTC"))
                ),
            }
        return options

    def classify(self, exc: BaseException, target: str) -> DmitemsError | None:
        sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        reason = first_line(str(exc))
        if type(exc).__name__ == "ClientConfigurationError":
            # asyncpg: e.g. sslmode=verify-full without a root certificate to verify with.
            return InvalidInput(f"database URL: {reason}")
        if sqlstate is None:
            # psycopg reports a failed connection without a SQLSTATE (as OperationalError,
            # or its subclass ConnectionTimeout when connect_timeout runs out).
            classes = {cls.__name__ for cls in type(exc).__mro__}
            if "OperationalError" in classes and "connection" in reason.lower():
                return DatabaseUnreachable(f"database unreachable at {target}: {_tail(reason)}")
            # psycopg refuses some values itself, e.g. a NUL byte in a text field.
            if "DataError" in classes:
                return InvalidInput(f"invalid value: {reason}")
            return None
        if sqlstate == "42P01":
            return SchemaMissing(
                f"table 'items' does not exist in {target}; run `dmitems init-db` first"
            )
        if sqlstate == "42703":  # undefined_column: a table made by something else
            from dmitems.db.schema import column_missing

            return column_missing(target, reason)
        if sqlstate in ("28P01", "28000"):
            return LoginFailed(f"login failed at {target}: {reason}")
        if sqlstate == "3D000":
            return DatabaseUnreachable(f"database unreachable at {target}: {reason}")
        if sqlstate == "22001":
            return ValueTooLong(f"value too long: {reason}")
        if sqlstate.startswith("23"):
            return IntegrityViolation(f"rejected by the database: {reason}")
        if sqlstate.startswith("22"):
            return InvalidInput(f"invalid value: {reason}")
        if sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03"):
            return ConnectionLost(f"connection to {target} lost: {reason}")
        if sqlstate in ("53300", "53400", "40001", "40P01", "55P03", "57014"):
            return DatabaseUnavailable(f"database busy at {target}: {reason}")
        return None


def _tail(reason: str) -> str:
    # psycopg: 'connection failed: connection to server at "h", port 1 failed: Connection refused'
    return reason.rsplit("failed:", 1)[-1].strip() or reason
