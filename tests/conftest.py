"""Fixtures: a fresh real database per test (SQLite file, throwaway PostgreSQL).

PostgreSQL tests skip with a reason when the binaries are missing, except
under CI=true, where they fail.  Set DMITEMS_TEST_DM_URL to run the same
tests against a live DM8 server as well.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from dmitems.config import mask_url
from tests.cli_runner import invoke  # noqa: F401  (re-exported for tests)
from tests.postgres_server import PostgresServer, start_server

IN_CI = os.environ.get("CI", "").lower() == "true"
DM_URL = os.environ.get("DMITEMS_TEST_DM_URL")
KEEP_ENV = {"DMITEMS_TEST_PG_BIN", "DMITEMS_TEST_DM_URL"}

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
if DM_URL:
    BACKENDS.append(pytest.param("dm", marks=pytest.mark.dm_live))


def pytest_report_header(config: pytest.Config) -> str:
    from tests.postgres_server import find_bindir

    bindir = find_bindir()
    where = f"PostgreSQL binaries {bindir}" if bindir else "PostgreSQL binaries missing"
    live = f"; live DM8 at {mask_url(DM_URL)}" if DM_URL else ""
    return f"dmitems: {where} (CI={IN_CI}){live}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    try:
        server = start_server()
    except FileNotFoundError as exc:
        if IN_CI:
            pytest.fail(f"CI=true but {exc}")
        pytest.skip(str(exc))
    yield server
    server.stop()


def _admin(server: PostgresServer, statement: str) -> None:
    import psycopg

    url = server.url("postgres", driver="psycopg").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(statement)


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """A new, empty PostgreSQL database for this test only."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    _admin(pg_server, f'CREATE DATABASE "{name}"')
    yield pg_server.url(name)
    _admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No DMITEMS_* from the outside world, and a private working directory."""
    for key in list(os.environ):
        if key.startswith("DMITEMS_") and key not in KEEP_ENV:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh database URL on each backend: SQLite file, PostgreSQL (and live DM if set)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return str(DM_URL)


@pytest.fixture
def settings(database_url: str) -> Any:
    from dmitems.config import load_settings

    return load_settings(flags={"database_url": database_url, "database_pool_size": 5})


@pytest.fixture
async def database(settings: Any) -> AsyncIterator[Any]:
    """A Database with a fresh, empty items table."""
    from dmitems.db import Database
    from dmitems.db.schema import create_schema

    db = Database(settings)
    await create_schema(db, drop=True)
    yield db
    await db.dispose()
