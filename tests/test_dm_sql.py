"""Compile-level checks of the SQL dmitems sends to DM8 (no connection needed)."""

from __future__ import annotations

from typing import Any

import pytest

from dmitems import statements
from dmitems.models import items


@pytest.fixture
def dialect() -> Any:
    from dmitems.db.dm_dialect import DMDialect  # what dm+dmAsync URLs build under dmitems

    return DMDialect()


def ddl(dialect: Any) -> str:
    from sqlalchemy.schema import CreateTable

    return str(CreateTable(items).compile(dialect=dialect))


def test_primary_key_is_identity(dialect: Any) -> None:
    assert "id BIGINT NOT NULL IDENTITY(1, 1)" in ddl(dialect)


def test_strings_are_varchar2_in_characters(dialect: Any) -> None:
    text = ddl(dialect)
    assert "name VARCHAR2(255 CHAR) NOT NULL" in text
    assert "description VARCHAR2(500 CHAR)" in text
    assert "TEXT" not in text and "CLOB" not in text


def test_strings_in_bytes_when_marked_for_length_in_char_0(dialect: Any) -> None:
    from dmitems.db.dm import BYTES_PER_CHAR, DMBackend

    DMBackend().configure(None, None)  # type: ignore[arg-type]
    dialect.dmitems_bytes_per_char = BYTES_PER_CHAR
    text = ddl(dialect)
    assert "name VARCHAR2(1020) NOT NULL" in text and "description VARCHAR2(2000)" in text


def test_paging_is_offset_fetch(dialect: Any) -> None:
    statement, parameters = statements.list_items(20, 10)
    sql = str(statement.compile(dialect=dialect))
    assert "OFFSET :page_offset ROWS" in sql and "FETCH FIRST :page_limit ROWS ONLY" in sql
    assert parameters == {"page_offset": 20, "page_limit": 10}
    keyset = str(statements.items_after(5, 10).compile(dialect=dialect))
    assert "FETCH FIRST" in keyset and "OFFSET" not in keyset


def test_single_row_create_fetches_the_id_without_returning(dialect: Any) -> None:
    from dmitems.db.dm import DMBackend

    assert DMBackend.create_returning is False
    sql = str(
        statements.insert_item(returning=False).compile(
            dialect=dialect, column_keys=["name", "description", "price"]
        )
    )
    assert sql.startswith("INSERT INTO items (name, description, price)")
    assert "RETURNING" not in sql
    # The id comes from the dialect's rowid lookup after the insert.
    assert dialect.postfetch_lastrowid is True


def test_update_bumps_version_and_time_in_one_statement(dialect: Any) -> None:
    sql = str(
        statements.update_item(1, {"price": 2}, expected_version=1, returning=False).compile(
            dialect=dialect
        )
    )
    assert "version=(items.version + " in sql and "updated_at=CURRENT_TIMESTAMP" in sql
