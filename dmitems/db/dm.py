"""Dameng DM8: dmAsync for async, dmPython for sync, through dmSQLAlchemy.

The rules in the README's DM8 table live here, in :mod:`dmitems.db.dm_dialect`
(dmitems' ``dm+dmAsync`` dialect, which overrides dmSQLAlchemy's defects) and in
:mod:`dmitems.db.dm_defects` (the catalogue ``doctor`` reports):

* the dialect is registered for ``dm+dmAsync`` before the first DM engine is
  built (:meth:`DMBackend.prepare`); the installed packages are never modified;
* in an event loop that dmitems owns, the loop's default executor is sized
  from the pool before an async engine is used (:meth:`DMBackend.prepare_loop`,
  :mod:`dmitems.db.loops`); other loops are their owner's to size;
* driver options go through ``connect_args`` (the async dialect misplaces
  keyword arguments): ``login_timeout`` (30 s) and ``local_code`` (1 = UTF-8);
* single-row creates do not use ``RETURNING``: under dmAsync the dialect runs
  ``INSERT ... RETURNING ... INTO`` with the raw driver on the event loop
  thread, a full round trip with every other request stalled, and DM8 reports
  a server version below the dialect's threshold for implicit RETURNING.  The
  insert plus the dialect's rowid lookup plus a SELECT all run in worker
  threads instead (``create_returning = False``);
* DM error codes (``exc.args[0].code``) map onto dmitems errors.  The codes and
  messages come from the message catalogue of the DM client library bundled in
  the dmPython wheel (``libdmdpi``), which also maps -200 to Oracle's
  ORA-01017 "invalid username/password" and -2106 to ORA-00942;
* ``LENGTH_IN_CHAR`` is read with ``SF_GET_LENGTH_IN_CHAR()``: when it is 0,
  ``init-db`` sizes the string columns in bytes so that the character limits
  dmitems validates always fit.
"""

from __future__ import annotations

import platform
import re
import sys
from typing import TYPE_CHECKING, Any

from dmitems.db.base import Backend, first_line
from dmitems.errors import (
    ConnectionLost,
    DatabaseUnavailable,
    DatabaseUnreachable,
    DmitemsError,
    IntegrityViolation,
    LoginFailed,
    SchemaMissing,
    UnsupportedDatabase,
    ValueTooLong,
)
from dmitems.models import DESCRIPTION_MAX, NAME_MAX

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine
    from sqlalchemy.ext.asyncio import AsyncConnection

    from dmitems.config import Settings

# Client-side failures to reach the server: socket, DNS, connection setup.
UNREACHABLE_CODES = frozenset({-70028, -6011, -6003})
# The link broke or was never opened: during a query this is a lost connection.
CONNECTION_LOST_CODES = frozenset({-70019, -70025, -6010})
# Login refused: bad user/password (-200), expired password, bad default schema,
# password cipher error, too many failures (locked), unauthorized, LDAP/Kerberos,
# and the client-side "invalid user or password".
LOGIN_FAILED_CODES = frozenset(
    {-200, -2503, -2505, -2507, -2508, -2512, -2513, -6015, -11226, -70073, -70096}
)
# The client could not load its encryption or SSL libraries.
ENCRYPTION_CODES = frozenset({-70089, -70090, -70031, -70070})
VALUE_TOO_LONG_CODES = frozenset({-6108, -6169, -70005})
INTEGRITY_CODES = frozenset(range(-6612, -6600))
# "Invalid table or view name [%s]", "Invalid table name [%s]".
TABLE_MISSING_CODES = frozenset({-2106, -2104})
# "Invalid column name [%s]", "Invalid column name [%s].[%s]".
COLUMN_MISSING_CODES = frozenset({-2111, -2130})
# Session limits, lock timeouts, deadlocks, statement timeout: retry later.
BUSY_CODES = frozenset({-6001, -6002, -6403, -6405, -6407, -7049})
# What the dialect itself treats as a disconnect (invalidates the pooled connection).
DISCONNECT_CODES = frozenset({-70025, -70028, -6010, -70019})

# Bytes one character can take in the server's charset (GB18030 and UTF-8: up to 4).
BYTES_PER_CHAR = 4
CHARSETS = {0: "GB18030", 1: "UTF-8", 2: "EUC-KR"}
SETTINGS_QUERY = (
    "SELECT SF_GET_LENGTH_IN_CHAR(), SF_GET_CASE_SENSITIVE_FLAG(), SF_GET_UNICODE_FLAG()"
)
_CODE_PREFIX = re.compile(r"^\[CODE:-?\d+\]\s*")


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
            return first_line(_CODE_PREFIX.sub("", message))
    return first_line(_CODE_PREFIX.sub("", str(exc)))


def platform_supported() -> bool:
    machine = platform.machine().lower()
    if sys.platform.startswith("linux"):
        return machine in ("x86_64", "amd64", "aarch64", "arm64")
    return sys.platform == "win32"


def byte_limits_message(code: int, reason: str) -> str:
    return (
        f"value too long for DM ({reason}, DM error {code}): a database created with "
        f"LENGTH_IN_CHAR=0 counts VARCHAR lengths in bytes, so name holds at most {NAME_MAX} "
        f"bytes and description {DESCRIPTION_MAX} bytes (a Chinese character is 3 bytes in "
        "UTF-8); shorten the value, or recreate the table with `dmitems init-db --drop` "
        "(which sizes the columns in bytes)"
    )


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

    def prepare(self) -> None:
        register_dialect()

    async def prepare_loop(self, settings: Settings) -> None:
        from dmitems.db import loops

        loops.size_executor(settings)  # only in a loop dmitems owns

    def engine_options(self, settings: Settings, is_async: bool) -> dict[str, Any]:
        options = super().engine_options(settings, is_async)
        options["connect_args"] = {
            "login_timeout": settings.dm_login_timeout,
            "local_code": settings.dm_local_code,
        }
        return options

    def configure(self, engine: Engine, settings: Settings) -> None:
        _register_byte_sized_strings()

    async def prepare_schema(self, connection: AsyncConnection) -> dict[str, Any]:
        """Read LENGTH_IN_CHAR; when 0, make this engine's DDL size strings in bytes."""
        server = await read_server_settings(connection)
        if server.get("length_in_char") == 0:
            connection.sync_connection.dialect.dmitems_bytes_per_char = BYTES_PER_CHAR  # type: ignore[union-attr]
            server["varchar_unit"] = f"bytes ({BYTES_PER_CHAR} per character)"
        elif server.get("length_in_char") == 1:
            server["varchar_unit"] = "characters"
        return server

    def classify(self, exc: BaseException, target: str) -> DmitemsError | None:
        code = dm_error_code(exc)
        if code is None:
            return None
        reason = f"{dm_error_text(exc)} (DM error {code})"
        if code in UNREACHABLE_CODES:
            return DatabaseUnreachable(f"database unreachable at {target}: {reason}")
        if code in ENCRYPTION_CODES:
            return DatabaseUnreachable(
                f"cannot connect to {target}: {reason}; put dmPython's dmssl folder on "
                "LD_LIBRARY_PATH (see `dmitems doctor`)"
            )
        if code in LOGIN_FAILED_CODES:
            return LoginFailed(f"login failed at {target}: {reason}")
        if code in VALUE_TOO_LONG_CODES:
            return ValueTooLong(byte_limits_message(code, dm_error_text(exc)))
        if code in INTEGRITY_CODES:
            return IntegrityViolation(f"rejected by the database: {reason}")
        if code in TABLE_MISSING_CODES:
            return SchemaMissing(
                f"table 'items' does not exist in {target}; run `dmitems init-db` first"
            )
        if code in COLUMN_MISSING_CODES:
            from dmitems.db.schema import column_missing

            return column_missing(target, reason)
        if code in CONNECTION_LOST_CODES:
            return ConnectionLost(f"connection to {target} lost: {reason}")
        if code in BUSY_CODES:
            return DatabaseUnavailable(f"database busy at {target}: {reason}; try again")
        return None


# The registry names dmitems' dialect answers to: dm+dmAsync as dmSQLAlchemy spells it, and
# in lower case, which dmitems' URL check accepts too.
DIALECT_NAMES = ("dm.dmAsync", "dm.dmasync")


def register_dialect() -> None:
    """Make ``dm+dmAsync`` URLs build :class:`dmitems.db.dm_dialect.DMDialect` in this process.

    The registry imports the module only when such an engine is first built.
    """
    from sqlalchemy.dialects import registry

    for name in DIALECT_NAMES:
        registry.register(name, "dmitems.db.dm_dialect", "DMDialect")


async def read_server_settings(connection: AsyncConnection) -> dict[str, Any]:
    """LENGTH_IN_CHAR, CASE_SENSITIVE and charset of a DM server, in one round trip.

    Unknown values are None (an older server without these functions, or a driver
    double that does not answer them); that never fails the caller.
    """
    from sqlalchemy import text

    try:
        row = (await connection.execute(text(SETTINGS_QUERY))).first()
    except Exception:  # noqa: BLE001 - unknown settings must never fail init-db or doctor
        row = None
    values = list(row) if row is not None else []
    values += [None] * (3 - len(values))
    length_in_char, case_sensitive, unicode_flag = (_as_int(value) for value in values[:3])
    return {
        "length_in_char": length_in_char,
        "case_sensitive": case_sensitive,
        "charset": CHARSETS.get(unicode_flag, None) if unicode_flag is not None else None,
    }


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


_registered = False


def _register_byte_sized_strings() -> None:
    """Compile ``String(n)`` as ``VARCHAR2(n * 4)`` (bytes) on engines marked by prepare_schema."""
    global _registered
    if _registered:
        return
    from sqlalchemy import String
    from sqlalchemy.ext.compiler import compiles

    @compiles(String, "dm")
    def _dm_string(type_: String, compiler: Any, **kw: Any) -> str:
        factor = getattr(compiler.dialect, "dmitems_bytes_per_char", None)
        if factor and type_.length:
            return f"VARCHAR2({type_.length * factor})"
        return str(compiler.visit_string(type_, **kw))

    _registered = True
