"""Dameng DM8: dmAsync for async, dmPython for sync, through dmSQLAlchemy.

The rules in the README's "DM8 notes" live here: driver options go through
``connect_args`` (the async dialect misplaces keyword arguments), single-row
creates fetch the id without ``RETURNING ... INTO`` (which runs on the event
loop thread under dmAsync), and DM error codes map onto dmitems errors.
"""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING, Any

from dmitems.db.base import Backend, first_line
from dmitems.errors import (
    ConnectionLost,
    DatabaseUnreachable,
    DmitemsError,
    IntegrityViolation,
    LoginFailed,
    SchemaMissing,
    UnsupportedDatabase,
    ValueTooLong,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from dmitems.config import Settings

UNREACHABLE_CODES = frozenset({-70028, -70019, -70025})
LOGIN_FAILED_CODES = frozenset({-2501, -2502, -2503, -2504, -2506, -2507})
VALUE_TOO_LONG_CODES = frozenset({-6108, -6169})
INTEGRITY_CODES = frozenset(range(-6612, -6600))
TABLE_MISSING_CODES = frozenset({-2106})
DISCONNECT_CODES = frozenset({-70025, -70028, -6010, -70019})


def dm_error_code(exc: BaseException) -> int | None:
    """The DM error code of a dmPython exception (``exc.args[0].code``), if any."""
    args = getattr(exc, "args", ())
    if args:
        code = getattr(args[0], "code", None)
        if isinstance(code, int):
            return code
    return None


def dm_error_text(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    if args:
        message = getattr(args[0], "message", None)
        if isinstance(message, str):
            return first_line(message)
    return first_line(str(exc))


def platform_supported() -> bool:
    machine = platform.machine().lower()
    if sys.platform.startswith("linux"):
        return machine in ("x86_64", "amd64", "aarch64", "arm64")
    return sys.platform == "win32"


class DMBackend(Backend):
    name = "dm"
    schemes = ("dm", "dm+dmpython", "dm+dmasync")
    async_driver = "dmAsync"
    sync_driver = "dmPython"
    async_modules = ("dmPython", "dmAsync", "dmSQLAlchemy", "async_timeout")
    sync_modules = ("dmPython", "dmSQLAlchemy")
    install_hint = "pip install dmPython dmAsync dmSQLAlchemy async-timeout"
    create_returning = False

    def check_driver(self, is_async: bool) -> None:
        if not platform_supported():
            raise UnsupportedDatabase(
                "DM driver not available on this platform: dmPython has wheels for "
                "Linux x86_64/aarch64 and Windows only"
            )
        super().check_driver(is_async)

    def urls(self, url: URL) -> tuple[URL, URL]:
        return super().urls(url.set(drivername="dm"))

    def engine_options(self, settings: Settings, is_async: bool) -> dict[str, Any]:
        options = super().engine_options(settings, is_async)
        options["connect_args"] = {
            "login_timeout": settings.dm_login_timeout,
            "local_code": settings.dm_local_code,
        }
        return options

    def classify(self, exc: BaseException, target: str) -> DmitemsError | None:
        code = dm_error_code(exc)
        if code is None:
            return None
        reason = f"{dm_error_text(exc)} (DM error {code})"
        if code in UNREACHABLE_CODES:
            return DatabaseUnreachable(f"database unreachable at {target}: {reason}")
        if code in LOGIN_FAILED_CODES:
            return LoginFailed(f"login failed at {target}: {reason}")
        if code in VALUE_TOO_LONG_CODES:
            return ValueTooLong(f"value too long for the database: {reason}")
        if code in INTEGRITY_CODES:
            return IntegrityViolation(f"rejected by the database: {reason}")
        if code in TABLE_MISSING_CODES:
            return SchemaMissing(
                f"table 'items' does not exist in {target}; run `dmitems init-db` first"
            )
        if code in DISCONNECT_CODES:
            return ConnectionLost(f"connection to {target} lost: {reason}")
        return None
