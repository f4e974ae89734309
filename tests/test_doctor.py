"""``dmitems doctor`` on real SQLite and PostgreSQL, and on DM over the dmPython driver double."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import invoke
from tests.dm_driver_double import installed

DM_URL = "dm+dmAsync://SYSDBA:Doctor_pw3@127.0.0.1:5236"
# Every defect named in /work/shared/dm-notes.md, by its key in dmitems.db.dm_defects.
DM_NOTES_DEFECTS = {
    "sqlalchemy-2.1", "async-timeout-undeclared", "slots-shadowing", "blocking-connect",
    "fetch-on-loop", "small-executor", "dead-pre-ping", "executemany-returning",
    "executemany-appends-returning", "returning-into-on-loop", "dialect-kwargs",
    "login-timeout", "encryption-module", "identity", "text-is-lob", "reserved-words",
    "boolean-is", "timezone-dropped", "length-in-char",
}


def test_doctor_reports_versions_connectivity_and_sizing(database_url: str) -> None:
    result = invoke("--url", database_url, "doctor", "--concurrency", "100", "--json")
    assert result.exit_code == 0, result.output
    report = result.json()
    assert report["ok"] is True
    assert report["versions"]["python"] and report["versions"]["sqlalchemy"].startswith("2.0")
    assert all(report["versions"]["drivers"].values())
    assert report["connectivity"]["ok"] is True and report["connectivity"]["connect_seconds"] >= 0
    assert report["sizing"]["concurrency"] == 100
    pool = {check["name"]: check for check in report["checks"]}["pool"]
    assert pool["status"] == "warn" and "80 requests wait" in pool["detail"]
    if report["backend"] == "sqlite":
        assert report["connectivity"]["journal_mode"] == "wal"
    elif report["backend"] == "postgresql":
        assert report["connectivity"]["max_connections"] > 0
        assert report["connectivity"]["server_version"]


@pytest.mark.postgres
def test_doctor_fails_when_postgres_cannot_hold_the_pools(pg_url: str) -> None:
    result = invoke(
        "--url", pg_url, "doctor", "--json",
        env={"DMITEMS_SERVER_WORKERS": "64", "DMITEMS_DATABASE_POOL_SIZE": "1000"},
    )
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1 and "max_connections" in result.stderr
    checks = {check["name"]: check for check in result.json()["checks"]}
    assert checks["max_connections"]["status"] == "fail"


def test_doctor_rich_report_on_sqlite(tmp_path: Path) -> None:
    result = invoke("--url", f"sqlite+aiosqlite:///{tmp_path / 'd.db'}", "doctor")
    assert result.exit_code == 0, result.output
    assert "journal_mode=wal" in result.stdout and "all checks passed" in result.stdout


def test_doctor_on_dm_names_every_defect_and_its_status() -> None:
    with installed():
        result = invoke("--url", DM_URL, "doctor", "--concurrency", "30", "--json")
    assert result.exit_code == 0, result.output
    report = result.json()
    defects = {defect["key"]: defect for defect in report["defects"]}
    assert set(defects) == DM_NOTES_DEFECTS
    for key in ("slots-shadowing", "blocking-connect", "dead-pre-ping", "executemany-returning"):
        assert defects[key]["present"] is True and defects[key]["status"] == "fixed"
    assert report["connectivity"]["length_in_char"] == 1
    assert report["connectivity"]["charset"] == "UTF-8"
    assert report["sizing"]["executor_threads"] >= report["sizing"]["pool_capacity"]
    assert "Doctor_pw3" not in result.output


def test_doctor_on_dm_rich_report_lists_defects() -> None:
    with installed():
        result = invoke("--url", DM_URL, "doctor")
    assert result.exit_code == 0, result.output
    assert "known DM8 defects" in result.stdout and "fixed" in result.stdout


def test_doctor_fails_when_dm_executor_is_smaller_than_the_pool() -> None:
    with installed():
        result = invoke(
            "--url", DM_URL, "doctor", "--json",
            env={"DMITEMS_DM_EXECUTOR_THREADS": "4", "DMITEMS_DATABASE_POOL_SIZE": "20"},
        )
    assert result.exit_code == 3
    assert "executor" in result.stderr and result.stderr.count("\n") == 1


def test_doctor_unreachable_database_is_exit_3(tmp_path: Path) -> None:
    result = invoke("--url", "postgresql+asyncpg://u:Pw_doc5@127.0.0.1:1/x", "doctor")
    assert result.exit_code == 3
    assert "Pw_doc5" not in result.output
