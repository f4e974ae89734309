"""The defects a hostile tryout found (issue 15), each pinned by a test that failed before its fix.

1. secret-looking URL query parameters printed in clear;
2. ``--debug`` turning every exit code into 1;
3. ids of 2**63 and more on SQLite ending in an OverflowError (exit 1);
4. libpq-style URL parameters (``sslmode``...) failing inside asyncpg (exit 1);
5. driver class names (``<class 'asyncpg.exceptions.DataError'>``) in messages;
7. ``serve`` on a non-loopback address without an API key starting silently.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dmitems.config import load_settings, mask_url
from tests.cli_runner import invoke
from tests.postgres_server import PASSWORD, free_port

QUERY_SECRET = "Qry-Secret-7731"


def _sqlite(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'items.db'}"
    assert invoke("--url", url, "init-db").exit_code == 0
    return url


# -- 1. secrets in the URL query ---------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["password", "pass", "pwd", "passwd", "secret", "token", "key", "sslpassword", "api_key",
     "PASSWORD", "access_token", "client_secret"],
)
def test_mask_url_hides_every_secret_looking_query_parameter(name: str) -> None:
    url = f"postgresql+asyncpg://app:pw1@h:5432/db?sslmode=disable&{name}={QUERY_SECRET}&x=1"
    from dmitems.config import url_secrets

    masked = mask_url(url)
    assert QUERY_SECRET not in masked and "pw1" not in masked
    assert masked == f"postgresql+asyncpg://app:***@h:5432/db?sslmode=disable&{name}=***&x=1"
    assert QUERY_SECRET in url_secrets(url)


def test_mask_url_keeps_harmless_parameters_and_finds_encoded_secrets() -> None:
    url = "postgresql://app@h/db?application_name=shop&password=a%40b%26c"
    from dmitems.config import url_secrets

    assert mask_url(url) == "postgresql://app@h/db?application_name=shop&password=***"
    assert {"a%40b%26c", "a@b&c"} <= set(url_secrets(url))


@pytest.mark.parametrize(
    ("url", "masked", "secret"),
    [
        ("postgresql://u:pw@h/db?application_name=me@x", "postgresql://u:***@h/db?application_name=me@x", "pw"),
        ("postgresql://u:p?ss@h/db", "postgresql://u:***@h/db", "p?ss"),
        ("postgresql://u:p@ss@h/db?x=a@b", "postgresql://u:***@h/db?x=a@b", "p@ss"),
    ],
)
def test_mask_url_finds_the_userinfo_password_beside_an_at_in_the_query(
    url: str, masked: str, secret: str
) -> None:
    from dmitems.config import url_secrets

    assert mask_url(url) == masked
    assert url_secrets(url) == [secret]


def test_settings_count_query_secrets_as_secrets() -> None:
    settings = load_settings(flags={"database_url": f"postgresql://u@h/db?token={QUERY_SECRET}"})
    assert settings.redact(f"failed: {QUERY_SECRET}") == "failed: ***"


def test_config_show_masks_query_secrets_in_table_and_json() -> None:
    url = f"postgresql+asyncpg://app:pw-9@h/db?password={QUERY_SECRET}"
    as_table = invoke("--url", url, "config", "show")
    as_json = invoke("--url", url, "config", "show", "--json")
    for outcome in (as_table, as_json):
        assert outcome.exit_code == 0, outcome.output
        assert QUERY_SECRET not in outcome.output and "pw-9" not in outcome.output
    rows = {row["key"]: row["value"] for row in as_json.json()["settings"]}
    assert rows["url"] == "postgresql+asyncpg://app:***@h/db?password=***"


@pytest.mark.postgres
def test_doctor_json_masks_a_password_given_in_the_query(pg_url: str) -> None:
    url = pg_url.replace(f":{PASSWORD}@", "@") + f"?password={PASSWORD}"
    outcome = invoke("--url", url, "doctor", "--json")
    assert outcome.exit_code == 0, outcome.output
    assert PASSWORD not in outcome.output
    assert outcome.json()["url"].endswith("?password=***")


@pytest.mark.postgres
def test_bench_report_masks_a_password_given_in_the_query(pg_url: str, tmp_path: Path) -> None:
    url = pg_url.replace(f":{PASSWORD}@", "@") + f"?password={PASSWORD}"
    assert invoke("--url", url, "init-db").exit_code == 0
    report = tmp_path / "bench.json"
    outcome = invoke(
        "--url", url, "bench", "--requests", "20", "--warmup", "0s", "--concurrency", "2",
        "--mode", "async", "--quiet", "--json", str(report),
    )
    assert outcome.exit_code == 0, outcome.output
    assert PASSWORD not in outcome.output
    text = report.read_text()
    assert PASSWORD not in text and "password=***" in text


def _serve(url: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Start `dmitems serve`, wait until it answers, stop it; return its stderr."""
    import httpx

    port = free_port()
    environment = {**os.environ, "DMITEMS_DATABASE_URL": url, **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "dmitems", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=30)[1]


def test_serve_start_up_line_masks_query_secrets(tmp_path: Path) -> None:
    url = _sqlite(tmp_path) + f"?token={QUERY_SECRET}"
    # SQLite rejects unknown parameters only when it connects; the start-up line comes first.
    stderr = _serve(url)
    assert "serving http://127.0.0.1:" in stderr
    assert QUERY_SECRET not in stderr and "token=***" in stderr


# -- 2. --debug keeps the exit code -------------------------------------------------------


@pytest.mark.postgres
def test_debug_keeps_the_exit_code_of_an_unknown_database(pg_url: str) -> None:
    url = pg_url.rsplit("/", 1)[0] + "/no_such_database"
    plain = invoke("--url", url, "item", "list")
    debug = invoke("--debug", "--url", url, "item", "list")
    assert plain.exit_code == debug.exit_code == 3, debug.output
    assert "Traceback" in debug.stderr and "Traceback" not in plain.stderr
    assert "error: database unreachable" in debug.stderr.splitlines()[-1]
    assert PASSWORD not in debug.output


@pytest.mark.parametrize(
    ("args", "code"),
    [(("item", "get", "999"), 4), (("item", "add", "--name", "", "--price", "1"), 2)],
)
def test_debug_keeps_the_exit_code_on_sqlite(tmp_path: Path, args: tuple[str, ...], code: int) -> None:
    url = _sqlite(tmp_path)
    outcome = invoke("--debug", "--url", url, *args)
    assert outcome.exit_code == code, outcome.output
    assert "Traceback" in outcome.stderr


def test_debug_keeps_the_exit_code_of_a_missing_table(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    outcome = invoke("--debug", "--url", url, "item", "list")
    assert outcome.exit_code == 3, outcome.output


# -- 3. ids of 2**63 and more ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("item", "get", "9223372036854775808"),
        ("item", "update", "9223372036854775808", "--price", "3"),
        ("item", "delete", "9223372036854775808", "--yes"),
        ("item", "update", "1", "--price", "3", "--expect-version", "9223372036854775808"),
        ("item", "delete", "1", "--yes", "--expect-version", "9223372036854775808"),
        ("item", "list", "--skip", "9223372036854775808"),
    ],
)
def test_huge_ids_are_invalid_input_on_sqlite(tmp_path: Path, args: tuple[str, ...]) -> None:
    outcome = invoke("--url", _sqlite(tmp_path), *args)
    assert outcome.exit_code == 2, outcome.output
    assert "Overflow" not in outcome.output and len(outcome.stderr.splitlines()) == 1


# -- 4. libpq URL parameters -----------------------------------------------------------------


def _both_engines(url: str, statement: str) -> tuple[str, str]:
    """``statement``'s single value through the async engine and through the sync one."""
    import asyncio

    from sqlalchemy import text

    from dmitems.db import Database

    database = Database(load_settings(flags={"database_url": url}))

    async def through_async() -> str:
        try:
            async with database.connect() as connection:
                return str((await connection.execute(text(statement))).scalar_one())
        finally:
            await database.dispose()

    first = asyncio.run(through_async())
    try:
        with database.sync_engine().connect() as connection:
            second = str(connection.execute(text(statement)).scalar_one())
    finally:
        database.sync_engine().dispose()
    return first, second


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
def test_libpq_parameters_reach_both_engines_alike(pg_url: str, driver: str) -> None:
    url = pg_url.replace("+asyncpg", f"+{driver}") + (
        "?sslmode=disable&connect_timeout=5&application_name=shop-7"
        "&options=-c%20statement_timeout%3D4321&target_session_attrs=read-write"
    )
    assert _both_engines(url, "SHOW application_name") == ("shop-7", "shop-7")
    assert _both_engines(url, "SHOW statement_timeout") == ("4321ms", "4321ms")
    assert _both_engines(url, "SHOW timezone") == ("UTC", "UTC")
    outcome = invoke("--url", url, "item", "list")
    assert outcome.exit_code == 3 and "does not exist" in outcome.stderr  # no table yet


@pytest.mark.postgres
def test_sslmode_require_against_a_server_without_ssl_is_unreachable(pg_url: str) -> None:
    outcome = invoke("--url", pg_url + "?sslmode=require", "item", "list")
    assert outcome.exit_code == 3, outcome.output
    assert "SSL" in outcome.stderr and len(outcome.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("sslmode=sometimes", "sslmode"),
        ("sslmode=verify-ca&sslrootcert=/nonexistent/root.crt", "sslrootcert"),
        ("sslcert=/nonexistent/client.crt", "sslcert"),
        ("connect_timeout=soon", "connect_timeout"),
        ("options=--search-path", "options"),
        ("target_session_attrs=leader", "target_session_attrs"),
        ("keepalives_idle=3", "keepalives_idle"),
    ],
)
def test_unusable_url_parameters_are_refused_naming_them(query: str, named: str) -> None:
    outcome = invoke("--url", f"postgresql+asyncpg://u:pw@127.0.0.1:1/db?{query}", "item", "list")
    assert outcome.exit_code == 2, outcome.output
    assert named in outcome.stderr and len(outcome.stderr.splitlines()) == 1
    assert "TypeError" not in outcome.stderr


# -- 5. no driver class names -----------------------------------------------------------------


@pytest.mark.postgres
def test_driver_errors_carry_no_class_names(pg_url: str) -> None:
    assert invoke("--url", pg_url, "init-db").exit_code == 0
    outcome = invoke("--url", pg_url, "item", "add", "--name", "nul\x00byte", "--price", "1")
    assert outcome.exit_code == 2, outcome.output
    assert "<class" not in outcome.stderr and "asyncpg.exceptions" not in outcome.stderr


def test_error_messages_drop_class_prefixes() -> None:
    from dmitems.errors import InvalidInput

    error = InvalidInput("invalid value: <class 'asyncpg.exceptions.DataError'>: out of range")
    assert error.message == "invalid value: out of range" == str(error)


# -- 7. serve on an exposed address without an API key ---------------------------------------


def test_serve_on_all_interfaces_without_an_api_key_warns(tmp_path: Path) -> None:
    stderr = _serve(_sqlite(tmp_path), "--host", "0.0.0.0")
    assert "warning: serving on 0.0.0.0 without an API key" in stderr


def test_serve_with_an_api_key_or_on_loopback_does_not_warn(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    with_key = _serve(url, "--host", "0.0.0.0", env={"DMITEMS_API_KEY": "k-123456"})
    loopback = _serve(url, "--host", "127.0.0.1")
    for stderr in (with_key, loopback):
        assert "serving http://" in stderr and "warning" not in stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.com", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    from dmitems.cli.serve_commands import is_loopback

    assert is_loopback(host) is loopback



# -- found by the outage test: psycopg's connect timeout was a 500 ----------------------------


def test_psycopg_connection_timeout_is_unreachable_not_unexpected() -> None:
    import psycopg

    from dmitems.db.postgresql import PostgreSQLBackend
    from dmitems.errors import DatabaseUnreachable

    error = psycopg.errors.ConnectionTimeout("connection timeout expired")
    mapped = PostgreSQLBackend().classify(error, "postgresql://h/db")
    assert isinstance(mapped, DatabaseUnreachable)
    assert mapped.message == "database unreachable at postgresql://h/db: connection timeout expired"


def test_an_unexpected_sqlalchemy_error_shows_no_sql() -> None:
    """The last-resort message shows the driver's text, not SQLAlchemy's (which holds SQL)."""
    import typer
    from sqlalchemy.exc import DataError
    from typer.testing import CliRunner

    from dmitems.cli.output import DmitemsGroup

    app = typer.Typer(cls=DmitemsGroup)

    @app.command()
    def boom() -> None:
        raise DataError("INSERT INTO items VALUES (%(name)s)", {"name": "x"}, ValueError("odd"))

    @app.command()
    def other() -> None:  # a second command keeps `boom` a subcommand of the group
        pass

    result = CliRunner().invoke(app, ["boom"])
    assert result.exit_code == 1
    assert "INSERT" not in result.stderr and "unexpected ValueError: odd" in result.stderr
