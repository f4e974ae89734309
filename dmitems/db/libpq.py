"""libpq-style URL parameters, read the same way by both PostgreSQL drivers.

Users copy URLs such as ``postgresql://u:p@host/db?sslmode=require`` from their
platform's console.  psycopg (the sync driver) hands the query to libpq, which
knows these parameters; asyncpg (the async driver) takes keyword arguments
instead (``ssl=``, ``timeout=``, ``server_settings=``) and SQLAlchemy passes the
query to it as they are, so ``sslmode`` used to fail with a TypeError.

Here each libpq parameter dmitems knows becomes asyncpg's equivalent, so both
engines connect alike:

==========================  ==========================================================
``sslmode``                 ``ssl=`` with the same mode name (asyncpg knows all six)
``sslrootcert``             an ``ssl.SSLContext`` verifying against that file
``sslcert`` / ``sslkey``    client certificate loaded into that context
``sslpassword``             the password of ``sslkey``
``connect_timeout``         ``timeout=`` (seconds); the sync driver gets it too
``application_name``        ``server_settings["application_name"]``
``options``                 each ``-c name=value`` into ``server_settings``
``target_session_attrs``    asyncpg's argument of the same name
==========================  ==========================================================

Any other query parameter that neither driver understands is refused with
exit 2, naming it, instead of failing later inside a driver.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dmitems.errors import InvalidInput

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
CERTIFICATE_PARAMETERS = ("sslrootcert", "sslcert", "sslkey", "sslpassword")
TRANSLATED = (
    "sslmode",
    *CERTIFICATE_PARAMETERS,
    "connect_timeout",
    "application_name",
    "options",
    "target_session_attrs",
)
# asyncpg keyword arguments SQLAlchemy's asyncpg dialect passes on from the query.
ASYNCPG_ONLY = (
    "command_timeout",
    "statement_cache_size",
    "prepared_statement_cache_size",
    "max_cached_statement_lifetime",
    "max_cacheable_statement_size",
    "ssl",
    "direct_tls",
)
# Understood by both drivers as they are.
SHARED = ("password", "passfile", "krbsrvname")
SESSION_ATTRS = ("any", "primary", "standby", "read-write", "read-only", "prefer-standby")


@dataclass
class LibpqParameters:
    """The libpq parameters of one URL, ready for either driver."""

    ssl: Any = None  # None: asyncpg's default (prefer), else a mode name or an SSLContext
    connect_timeout: float | None = None
    application_name: str | None = None
    server_settings: dict[str, str] = field(default_factory=dict)
    target_session_attrs: str | None = None


def last(value: str | tuple[str, ...]) -> str:
    return value[-1] if isinstance(value, tuple) else value


def check_parameters(query: Mapping[str, Any]) -> None:
    unknown = sorted(set(query) - set(TRANSLATED) - set(ASYNCPG_ONLY) - set(SHARED))
    if unknown:
        known = ", ".join(TRANSLATED + ASYNCPG_ONLY + SHARED)
        raise InvalidInput(
            f"unsupported PostgreSQL URL parameter {', '.join(unknown)}; dmitems understands: "
            f"{known}"
        )


def split_query(query: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(async query, sync query): what each driver still reads from the URL itself."""
    check_parameters(query)
    async_query = {k: v for k, v in query.items() if k not in TRANSLATED}
    sync_query = {k: v for k, v in query.items() if k not in ASYNCPG_ONLY}
    return async_query, sync_query


def parse(query: Mapping[str, Any]) -> LibpqParameters:
    check_parameters(query)
    values = {key: last(value) for key, value in query.items()}
    found = LibpqParameters(ssl=_ssl(values))
    if "connect_timeout" in values:
        found.connect_timeout = _timeout(values["connect_timeout"])
    if "application_name" in values:
        found.application_name = values["application_name"]
    if "options" in values:
        found.server_settings = _options(values["options"])
    if "target_session_attrs" in values:
        attrs = values["target_session_attrs"]
        if attrs not in SESSION_ATTRS:
            raise InvalidInput(
                f"URL parameter target_session_attrs={attrs!r}: use one of {', '.join(SESSION_ATTRS)}"
            )
        found.target_session_attrs = attrs
    return found


def _timeout(raw: str) -> float:
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise InvalidInput(f"URL parameter connect_timeout={raw!r}: give whole seconds, e.g. 10")
    # libpq: 0 means wait forever; asyncpg wants a number, so take a long one.
    return seconds or 3600.0


def _options(raw: str) -> dict[str, str]:
    """``-c name=value`` (also ``-cname=value`` and ``--name=value``) pairs of libpq's options."""
    settings: dict[str, str] = {}
    words = iter(shlex.split(raw))
    for word in words:
        if word == "-c":
            word = next(words, "")
        elif word.startswith("-c"):
            word = word[2:]
        elif word.startswith("--"):
            word = word[2:]
        else:
            word = ""
        name, equals, value = word.partition("=")
        if not name or not equals:
            raise InvalidInput(
                f"URL parameter options={raw!r}: only '-c name=value' settings are supported"
            )
        settings[name.replace("-", "_")] = value
    return settings


def _ssl(values: Mapping[str, str]) -> Any:
    mode = values.get("sslmode")
    if mode is not None and mode not in SSL_MODES:
        raise InvalidInput(f"URL parameter sslmode={mode!r}: use one of {', '.join(SSL_MODES)}")
    files = {name: values[name] for name in CERTIFICATE_PARAMETERS if values.get(name)}
    if not files or mode == "disable":
        return mode  # libpq ignores certificate files when SSL is off
    if mode in (None, "allow", "prefer"):
        raise InvalidInput(
            f"URL parameter {', '.join(sorted(files))} needs sslmode=require, verify-ca or "
            "verify-full (the async driver cannot fall back to a plain connection with them)"
        )
    return _context(mode, files)


def _context(mode: str, files: Mapping[str, str]) -> Any:
    import ssl

    root = files.get("sslrootcert")
    # libpq: require with a root certificate checks it, as verify-ca does.
    verify = mode in ("verify-ca", "verify-full") or root is not None
    context = ssl.create_default_context()
    context.check_hostname = mode == "verify-full"
    if not verify:
        context.verify_mode = ssl.CERT_NONE
    with _naming("sslrootcert", root):
        if root is not None:
            context.load_verify_locations(cafile=root)
    with _naming("sslcert", files.get("sslcert")):
        if "sslcert" in files:
            context.load_cert_chain(
                files["sslcert"], files.get("sslkey"), password=files.get("sslpassword")
            )
    return context


@contextlib.contextmanager
def _naming(parameter: str, path: str | None) -> Iterator[None]:
    """A file that cannot be read becomes exit 2 naming the URL parameter (never its text)."""
    import ssl

    try:
        yield
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not usable"
        raise InvalidInput(f"URL parameter {parameter}={path}: {reason}") from None
