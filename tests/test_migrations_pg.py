"""PostgreSQL: the adoption is one transaction; killing it half-way changes nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from tests.cli_runner import invoke
from tests.seed_service import create_seed_table
from tests.test_migrations import read_seed

pytestmark = pytest.mark.postgres


def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgresql+asyncpg", "postgresql"))


def _upgrade_backend(admin: Any, database: str) -> tuple[str, str, bool] | None:
    """The upgrade's server process: (wait event type, query, holds a row lock on items)."""
    row = admin.execute(
        "SELECT a.pid, a.wait_event_type, a.query FROM pg_stat_activity a "
        "WHERE a.datname = %s AND a.application_name = 'dmitems' AND a.query LIKE 'ALTER TABLE%%'",
        (database,),
    ).fetchone()
    if row is None:
        return None
    pid, wait, query = row
    wrote = admin.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "WHERE l.pid = %s AND c.relname = 'items' AND l.mode = 'RowExclusiveLock' AND l.granted",
        (pid,),
    ).fetchone()[0]
    return wait or "", query, bool(wrote)


def test_interrupted_upgrade_changes_nothing(pg_url: str) -> None:
    create_seed_table(pg_url)
    before = read_seed(pg_url)
    database = pg_url.rsplit("/", 1)[-1]
    blocker, admin = _connect(pg_url), _connect(pg_url)
    admin.autocommit = True
    # An open reader: the upgrade's UPDATE (fill prices) passes, its first ALTER waits.
    blocker.execute("SELECT 1 FROM items LIMIT 1")
    process = subprocess.Popen(
        [sys.executable, "-m", "dmitems", "--url", pg_url, "db", "upgrade",
         "--fill-price", "0", "--yes"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        state = None
        while time.monotonic() < deadline and process.poll() is None:
            state = _upgrade_backend(admin, database)
            if state is not None and state[0] == "Lock":
                break
            time.sleep(0.05)
        assert state is not None and state[0] == "Lock", (state, process.poll())
        assert state[2], "the upgrade had not written yet: nothing to roll back"
    finally:
        process.kill()
        process.wait()
        blocker.rollback()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _upgrade_backend(admin, database) is not None:
        time.sleep(0.05)
    blocker.close()
    admin.close()
    assert read_seed(pg_url) == before
    current = invoke("--url", pg_url, "db", "current", "--json").json()
    assert current["revision"] is None and current["action"] == "adopt"
