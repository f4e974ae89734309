"""DM8 migrations: the SQL at compile level (Alembic offline mode with the real dialect),
and init-db / dry run / error codes through the dmPython driver double."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dmitems.db.schema import Difference, TableReport
from tests.cli_runner import invoke
from tests.dm_driver_double import installed

PASSWORD = "Mig_pw9"
DM_URL = f"dm+dmAsync://SYSDBA:{PASSWORD}@127.0.0.1:5236"
SEED_COLUMNS = {
    "id": "INTEGER", "name": "VARCHAR", "description": "VARCHAR", "price": "INTEGER",
    "created_at": "VARCHAR", "updated_at": "VARCHAR",
}


def seed_report(columns: dict[str, str] | None = None, *extra: Difference) -> TableReport:
    """What compare_table says about the seed table on DM (the DBA added INT IDENTITY)."""
    columns = dict(SEED_COLUMNS if columns is None else columns)
    differences = [
        Difference("type", "id", "id is INTEGER, dmitems needs BIGINT"),
        Difference("nullable", "price", "price allows NULL, dmitems needs NOT NULL"),
        *(
            Difference(kind, name, f"{name} {kind}")
            for name in ("created_at", "updated_at")
            for kind in ("type", "nullable", "default")
            if columns.get(name) == "VARCHAR"
        ),
        Difference("missing column", "version", "version (INTEGER) is missing"),
        Difference("check", None, "CHECK (price >= 0) is missing"),
        *extra,
    ]
    return TableReport("items", True, differences, columns=columns)


def dm_sql(report: TableReport, action: str = "adopt", fill_price: int | None = None) -> str:
    from dmSQLAlchemy.dmasync import DMDialectAsync_dmasync

    from dmitems.migrations import Survey, offline_sql

    found = Survey("items", report, None, action, rows=3)
    return offline_sql(DMDialectAsync_dmasync(), found, fill_price)


def statements(sql: str) -> list[str]:
    code = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    parts = (" ".join(part.split()) for part in code.split(";"))
    return [part for part in parts if part]


def test_adoption_sql_is_oracle_style_alter_table() -> None:
    sent = statements(dm_sql(seed_report(), fill_price=0))
    adoption = sent[sent.index("UPDATE items SET price = 0 WHERE price IS NULL OR price < 0"):]
    assert [s.split(" = ")[0] if s.startswith("UPDATE") else s for s in adoption[:9]] == [
        "UPDATE items SET price",
        "ALTER TABLE items ADD created_at_dmitems DATETIME",
        "UPDATE items SET created_at_dmitems",
        "UPDATE items SET created_at_dmitems",
        "ALTER TABLE items DROP COLUMN created_at",
        "ALTER TABLE items RENAME COLUMN created_at_dmitems TO created_at",
        "ALTER TABLE items MODIFY created_at DEFAULT CURRENT_TIMESTAMP",
        "ALTER TABLE items MODIFY created_at NOT NULL",
        "ALTER TABLE items ADD updated_at_dmitems DATETIME",
    ]
    assert "REGEXP_LIKE(created_at, " in adoption[2] and "WHERE created_at_dmitems IS NULL" in adoption[2]
    assert adoption[-5:] == [
        "ALTER TABLE items ADD version INTEGER DEFAULT '1' NOT NULL",
        "ALTER TABLE items MODIFY price NOT NULL",
        "ALTER TABLE items ADD CONSTRAINT ck_items_price_non_negative CHECK (price >= 0)",
        "ALTER TABLE items MODIFY id BIGINT",
        "UPDATE dmitems_alembic_version SET version_num='0002' "
        "WHERE dmitems_alembic_version.version_num = '0001'",
    ]
    text = " ".join(sent)
    assert "ALTER COLUMN" not in text and "RETURNING" not in text and "BEGIN" not in text


def test_rerun_after_a_half_way_failure_does_only_what_is_left() -> None:
    # DM committed: created_at converted and renamed, updated_at's text column dropped
    # after its scratch column was filled; then the connection broke.
    columns = {**SEED_COLUMNS, "created_at": "TIMESTAMP", "updated_at_dmitems": "TIMESTAMP"}
    del columns["updated_at"]
    report = seed_report(
        columns,
        Difference("nullable", "created_at", "created_at allows NULL"),
        Difference("missing column", "updated_at", "updated_at is missing"),
        Difference("extra column", "updated_at_dmitems", "updated_at_dmitems is not a dmitems column"),
    )
    from dmitems.migrations.adoption import blocking

    assert blocking(report, "dm") == []
    sent = statements(dm_sql(report, fill_price=0))
    text = " ".join(sent)
    assert "ADD created_at_dmitems" not in text and "DROP COLUMN" not in text
    assert "ADD updated_at_dmitems" not in text and "REGEXP_LIKE" not in text
    assert "ALTER TABLE items RENAME COLUMN updated_at_dmitems TO updated_at" in sent
    assert "ALTER TABLE items MODIFY created_at NOT NULL" in sent
    assert "ALTER TABLE items MODIFY updated_at NOT NULL" in sent


def test_an_id_without_identity_is_not_adopted_on_dm() -> None:
    from dmitems.migrations.adoption import blocking

    report = seed_report(None, Difference("identity", "id", "id has no identity"))
    assert [d.kind for d in blocking(report, "dm")] == ["identity"]
    assert blocking(report, "postgresql") == []


def test_create_sql_has_identity_and_the_version_table() -> None:
    sent = statements(dm_sql(TableReport("items", False), action="create"))
    create = next(s for s in sent if s.startswith("CREATE TABLE items"))
    assert "id BIGINT NOT NULL IDENTITY(1, 1)" in create
    assert "name VARCHAR2(255 CHAR) NOT NULL" in create
    assert "CONSTRAINT ck_items_price_non_negative CHECK (price >= 0)" in create
    assert sent[0].startswith("CREATE TABLE dmitems_alembic_version")
    assert "INSERT INTO dmitems_alembic_version (version_num) VALUES ('0001')" in sent


@pytest.fixture
def double() -> Iterator[Any]:
    with installed() as module:
        yield module


def test_init_db_through_the_driver_double_records_the_revision(double: Any) -> None:
    result = invoke("--url", DM_URL, "init-db", "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["created"] is True and result.json()["revision"] == "0002"
    sent = [call.statement or "" for call in double.calls if call.name == "execute"]
    assert any(s.lstrip().startswith("CREATE TABLE dmitems_alembic_version") for s in sent)
    assert not any("RETURNING" in s and "dmitems_alembic_version" in s for s in sent)
    rows = double._the_store().db.execute("SELECT version_num FROM dmitems_alembic_version")
    assert rows.fetchall() == [("0002",)]
    assert invoke("--url", DM_URL, "item", "add", "--name", "n", "--price", "1").exit_code == 0


def test_dry_run_through_the_driver_double_sizes_strings_in_bytes(double: Any) -> None:
    double.configure(length_in_char=0)
    result = invoke("--url", DM_URL, "db", "upgrade", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "name VARCHAR2(1020) NOT NULL" in result.stdout
    assert "IDENTITY(1, 1)" in result.stdout
    assert not [call for call in double.calls if (call.statement or "").startswith("\nCREATE")]


def test_invalid_column_name_is_exit_3_with_the_fix(double: Any) -> None:
    assert invoke("--url", DM_URL, "init-db").exit_code == 0
    double.fail_next("execute", -2111, f"Invalid column name [VERSION] {PASSWORD}")
    result = invoke("--url", DM_URL, "item", "list")
    assert result.exit_code == 3 and result.stderr.count("\n") == 1
    assert "DM error -2111" in result.stderr and "dmitems db upgrade" in result.stderr
    assert PASSWORD not in result.output
