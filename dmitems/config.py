"""Settings: defaults < config file (TOML) < environment (``DMITEMS_*``) < command-line flags.

The TOML file groups keys in sections (``[database]``, ``[server]``, ``[dm]``,
``[bench]``); each key maps to one flat field named ``<section>_<key>`` (or
just ``<key>`` for a few well-known names such as ``api_key``).  The
environment variable of a field is ``DMITEMS_`` + the field name in capitals,
e.g. ``DMITEMS_DATABASE_URL`` or ``DMITEMS_DATABASE_PASSWORD``.

``load_settings`` also records where each value came from, for ``dmitems config show``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from dmitems.errors import InvalidInput, UnsupportedDatabase, redact

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_URL = "sqlite+aiosqlite:///dmitems.db"
DEFAULT_CONFIG_FILE = "dmitems.toml"
CONFIG_ENV_VAR = "DMITEMS_CONFIG"
ENV_PREFIX = "DMITEMS_"

SOURCE_DEFAULT = "default"
SOURCE_ENV = "env"
SOURCE_FLAG = "flag"


# A plain SQL identifier: the table and schema settings end up in SQL and DDL.
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_$]{0,127}$"


def _field(default: Any, section: str, description: str, **kwargs: Any) -> Any:
    return Field(default, description=description, json_schema_extra={"section": section}, **kwargs)


class Settings(BaseSettings):
    """Every setting dmitems knows.  ``config.example.toml`` documents each one."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        case_sensitive=False,
    )

    # [database]
    database_url: str = _field(DEFAULT_URL, "database", "SQLAlchemy URL (sync or async form)")
    database_password: SecretStr | None = _field(
        None, "database", "password; overrides any password in the URL"
    )
    database_echo: bool = _field(False, "database", "log every SQL statement")
    database_pool_size: int = _field(20, "database", "connections kept in the pool", ge=1, le=1000)
    database_max_overflow: int = _field(
        0, "database", "extra connections opened under load", ge=0, le=1000
    )
    database_pool_timeout: float = _field(
        30.0, "database", "seconds to wait for a free connection", gt=0
    )
    database_pool_queue: Literal["fifo", "native"] = _field(
        "fifo", "database", "who gets a freed connection: the longest waiter (fifo), "
        "or whoever the pool wakes first (native)"
    )
    database_pool_recycle: int = _field(
        1800, "database", "seconds before a connection is replaced (-1: never)", ge=-1
    )
    database_pool_pre_ping: bool = _field(
        False, "database", "test each connection at checkout (one extra round trip)"
    )
    database_connect_timeout: float = _field(
        10.0, "database", "seconds allowed to open a connection", gt=0
    )
    database_busy_timeout: float = _field(
        30.0, "database", "SQLite: seconds to wait on a locked database", ge=0
    )
    database_schema: str | None = _field(
        None, "database", "schema holding the table (DM: its owner, e.g. APP); empty: the "
        "login's default", pattern=IDENTIFIER,
    )
    database_table: str = _field("items", "database", "name of the items table", pattern=IDENTIFIER)

    # [server]
    server_host: str = _field("127.0.0.1", "server", "address to bind")
    server_port: int = _field(8000, "server", "TCP port", ge=0, le=65535)
    server_workers: int = _field(1, "server", "worker processes", ge=1, le=64)
    server_mode: Literal["async", "sync"] = _field(
        "async", "server", "async handlers on the async engine, or def handlers on the sync engine"
    )
    api_key: SecretStr | None = _field(
        None, "server", "bearer token required on mutating routes"
    )
    server_protect_reads: bool = _field(False, "server", "require the API key on reads too")
    server_batch_max: int = _field(1000, "server", "most items in one batch request", ge=1)
    server_max_body_bytes: int = _field(
        8 * 1024 * 1024, "server", "largest request body accepted", ge=1024
    )
    server_cors_origins: list[str] = _field([], "server", "origins allowed by CORS; empty: CORS off")
    server_access_log: bool = _field(False, "server", "log one line per request")

    # [dm]
    dm_login_timeout: int = _field(30, "dm", "dmPython login_timeout in seconds", ge=1)
    dm_local_code: int = _field(1, "dm", "dmPython local_code (1 = UTF-8)")
    dm_executor_threads: int | None = _field(
        None, "dm", "threads for the async DM driver; empty: pool capacity + margin", ge=1
    )
    dm_warm_pool: bool = _field(True, "dm", "open every pooled connection when the server starts")

    # Provenance of each field, filled by load_settings.
    _sources: dict[str, str] = {}
    _config_file: Path | None = None

    @property
    def pool_capacity(self) -> int:
        return self.database_pool_size + self.database_max_overflow

    @property
    def sources(self) -> dict[str, str]:
        return dict(self._sources)

    @property
    def config_file(self) -> Path | None:
        return self._config_file

    def secrets(self) -> list[str]:
        """Every secret value these settings hold, for redaction of any output."""
        found: list[str] = []
        for secret in (self.database_password, self.api_key):
            if secret is not None and secret.get_secret_value():
                found.append(secret.get_secret_value())
        found.extend(url_secrets(self.database_url))
        return found

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())

    def masked_url(self) -> str:
        return mask_url(self.database_url)


def field_section(name: str) -> str:
    extra = Settings.model_fields[name].json_schema_extra
    assert isinstance(extra, dict)
    return str(extra["section"])


def toml_key(name: str) -> str:
    return name.removeprefix(field_section(name) + "_")


_TOML_FIELDS: dict[tuple[str, str], str] = {
    (field_section(name), toml_key(name)): name for name in Settings.model_fields
}

# Greedy up to the last "@", as SQLAlchemy parses it, so a password holding "@" is hidden whole.
_URL_PASSWORD = re.compile(r"(?P<head>://[^:/@\s]*:)(?P<password>\S*)(?P<tail>@)")
# A query parameter whose name looks like it holds a secret: password, pass, pwd,
# sslpassword, secret, token, key, api_key, auth...  Masking a harmless one (sslkey
# is a file name) costs nothing; printing a real one costs a password.
_URL_SECRET_PARAMETER = re.compile(
    r"(?P<head>[?&;](?P<name>[^=&#\s]*(?:pass|pwd|secret|token|key|auth|credential)[^=&#\s]*)=)"
    r"(?P<value>[^&#\s]*)",
    re.IGNORECASE,
)
MASK = "***"


def _userinfo_part(url: str) -> tuple[str, str]:
    """(the part that holds the userinfo password, the rest): the part before the query
    when that already holds an "@" (so "?application_name=me@x" is no password), else the
    whole URL (a password may hold a "?")."""
    head, mark, query = url.partition("?")
    return (head, mark + query) if "@" in head else (url, "")


def url_secrets(url: str) -> list[str]:
    """Every secret a URL holds: the userinfo password and secret-looking query values,
    each as written and percent-decoded."""
    from urllib.parse import unquote

    userinfo, _ = _userinfo_part(url)
    found = [m.group("password") for m in _URL_PASSWORD.finditer(userinfo)]
    found += [m.group("value") for m in _URL_SECRET_PARAMETER.finditer(url)]
    decoded = [unquote(value) for value in found]
    return [value for value in dict.fromkeys(found + decoded) if value and value != MASK]


def mask_url(url: str) -> str:
    """The URL with its password and every secret-looking query value replaced by ``***``,
    even if SQLAlchemy cannot parse it.  Every place dmitems shows a URL goes through here."""
    userinfo, rest = _userinfo_part(url)
    url = _URL_PASSWORD.sub(rf"\g<head>{MASK}\g<tail>", userinfo) + rest
    return _URL_SECRET_PARAMETER.sub(rf"\g<head>{MASK}", url)


def find_config_file(explicit: Path | None) -> Path | None:
    """``--config`` first, then ``$DMITEMS_CONFIG``, then ``./dmitems.toml`` if present."""
    if explicit is not None:
        if not explicit.is_file():
            raise InvalidInput(f"config file not found: {explicit}")
        return explicit
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise InvalidInput(f"config file not found: {path} (from ${CONFIG_ENV_VAR})")
        return path
    local = Path(DEFAULT_CONFIG_FILE)
    return local if local.is_file() else None


def read_config_file(path: Path) -> dict[str, Any]:
    """Flatten a TOML config file into field names, rejecting unknown keys."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"config file {path}: {exc}") from None
    except OSError as exc:
        raise InvalidInput(f"config file {path}: {exc.strerror}") from None
    values: dict[str, Any] = {}
    for section, table in document.items():
        if not isinstance(table, dict):
            raise InvalidInput(
                f"config file {path}: '{section}' must be a section such as [database]"
            )
        for key, value in table.items():
            name = _TOML_FIELDS.get((section, key))
            if name is None:
                raise InvalidInput(f"config file {path}: unknown key [{section}] {key}")
            values[name] = value
    return values


def load_settings(config_path: Path | None = None, flags: dict[str, Any] | None = None) -> Settings:
    """Build the effective settings and remember where each value came from."""
    flags = {name: value for name, value in (flags or {}).items() if value is not None}
    config_file = find_config_file(config_path)
    file_values = read_config_file(config_file) if config_file else {}
    env_values = EnvSettingsSource(Settings)()

    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    file_source = f"file {config_file}" if config_file else ""
    for layer, label in ((file_values, file_source), (env_values, SOURCE_ENV), (flags, SOURCE_FLAG)):
        for name, value in layer.items():
            merged[name] = value
            sources[name] = label
    try:
        settings = _validate(merged)
    except ValidationError as exc:
        secrets = [str(v) for k, v in merged.items() if k in ("database_password", "api_key")]
        secrets.extend(url_secrets(str(merged.get("database_url", ""))))
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        where = sources.get(name, SOURCE_DEFAULT)
        raise InvalidInput(
            redact(f"setting {name} (from {where}): {first['msg']}", secrets)
        ) from None
    for name in Settings.model_fields:
        sources.setdefault(name, SOURCE_DEFAULT)
    settings._sources = sources
    settings._config_file = config_file
    return settings


def _validate(values: dict[str, Any]) -> Settings:
    # Only the merged values count: the settings sources are bypassed on purpose so
    # that the precedence above is the only one applied.
    return Settings.model_validate(values)


def describe(settings: Settings) -> list[dict[str, Any]]:
    """Rows for ``config show``: section, key, value (secrets masked), source, env var."""
    rows = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = "***" if value.get_secret_value() else ""
        elif name == "database_url":
            value = mask_url(value)
        rows.append(
            {
                "section": field_section(name),
                "key": toml_key(name),
                "value": value,
                "source": settings.sources.get(name, SOURCE_DEFAULT),
                "env": ENV_PREFIX + name.upper(),
            }
        )
    return rows


def unsupported_url(url: str, reason: str) -> UnsupportedDatabase:
    return UnsupportedDatabase(f"{reason}: {mask_url(url)}")
