"""Adopting the seed service's table on real SQLite and PostgreSQL, then using it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.cli_runner import invoke
from tests.seed_service import ROWS, SeedRow, create_seed_table, read_rows

UTC = timezone.utc


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def upgrade(url: str, *args: str) -> Any:
    return invoke("--url", url, "db", "upgrade", *args)


def test_init_db_on_the_seed_table_lists_differences_and_names_the_fix(database_url: str) -> None:
    create_seed_table(database_url)
    result = invoke("--url", database_url, "init-db")
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1 and "dmitems db upgrade --dry-run" in result.stderr
    assert "missing column: version" in result.stdout
    assert "type: created_at is VARCHAR(20), dmitems needs TIMESTAMP" in result.stdout
    assert "nullable: price allows NULL, dmitems needs NOT NULL" in result.stdout


def test_null_and_negative_prices_stop_the_upgrade_before_anything_changes(
    database_url: str,
) -> None:
    create_seed_table(database_url)
    before = read_seed(database_url)
    for args in ((), ("--dry-run",), ("--yes",)):
        result = upgrade(database_url, *args)
        assert result.exit_code == 2, result.output
        assert result.stderr.count("\n") == 1
        assert "2 row(s) have a NULL or negative price (ids 2, 4)" in result.stderr
    assert read_seed(database_url) == before


def test_ids_of_bad_prices_are_listed_up_to_20_then_counted(database_url: str) -> None:
    rows = tuple(SeedRow(f"n{i}", None, None, None, None) for i in range(25))
    create_seed_table(database_url, rows)
    result = upgrade(database_url, "--yes")
    assert result.exit_code == 2
    listed = ", ".join(str(i) for i in range(1, 21))
    assert f"25 row(s) have a NULL or negative price (ids {listed} and 5 more)" in result.stderr


def test_dry_run_then_upgrade_keeps_every_row(database_url: str, tmp_path: Path) -> None:
    ids = create_seed_table(database_url)
    dry = upgrade(database_url, "--dry-run", "--fill-price", "7")
    assert dry.exit_code == 0, dry.output
    assert "UPDATE items SET price = 7 WHERE price IS NULL OR price < 0" in dry.stdout
    assert "dmitems_alembic_version" in dry.stdout
    assert read_seed(database_url)[1]["price"] is None  # the dry run changed nothing

    not_confirmed = upgrade(database_url, "--fill-price", "7")
    assert not_confirmed.exit_code == 2 and "add --yes" in not_confirmed.stderr
    started = datetime.now(UTC) - timedelta(seconds=2)
    done = upgrade(database_url, "--fill-price", "7", "--yes", "--json")
    finished = datetime.now(UTC) + timedelta(seconds=2)
    assert done.exit_code == 0, done.output
    summary = done.json()["summary"]
    assert summary["prices_filled"] == 2
    assert summary["set_to_upgrade_time"] == {"created_at": 2, "updated_at": 3}

    rows = read_rows(database_url)
    assert [row["id"] for row in rows] == ids
    for row, seed in zip(rows, ROWS):
        assert (row["name"], row["description"]) == (seed.name, seed.description)
        assert row["price"] == (7 if seed.price is None or seed.price < 0 else seed.price)
        assert row["version"] == 1
    expected = {
        (0, "created_at"): datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        (0, "updated_at"): datetime(2024, 5, 2, 11, 30, tzinfo=UTC),
        (3, "created_at"): datetime(2024, 5, 3, 8, 0, tzinfo=UTC),
    }
    for index, row in enumerate(rows):
        for column in ("created_at", "updated_at"):
            value = utc(row[column])
            if (index, column) in expected:
                assert value == expected[(index, column)], (index, column)
            else:  # NULL or unreadable: the upgrade's own time
                assert started <= value <= finished, (index, column, value)

    again = upgrade(database_url, "--yes", "--json")
    assert again.exit_code == 0 and again.json()["action"] == "current"
    assert read_rows(database_url) == rows
    use_every_command(database_url, ids, tmp_path)


def use_every_command(url: str, ids: list[int], tmp_path: Path) -> None:
    """CRUD, import, export and bench on the adopted table, through the real CLI."""
    def cli(*args: str) -> Any:
        return invoke("--url", url, *args)

    assert cli("init-db").exit_code == 0
    added = cli("item", "add", "--name", "new", "--price", "3", "--json")
    assert added.exit_code == 0, added.output
    assert added.json()["id"] == max(ids) + 1  # the identity carries on after the highest id
    updated = cli("item", "update", str(ids[0]), "--price", "11", "--expect-version", "1", "--json")
    assert updated.exit_code == 0, updated.output
    assert updated.json()["version"] == 2 and updated.json()["price"] == 11
    assert cli("item", "delete", str(ids[2]), "--yes").exit_code == 0
    assert cli("item", "get", str(ids[2])).exit_code == 4
    source = tmp_path / "more.jsonl"
    source.write_text("".join(json.dumps({"name": f"i{i}", "price": i}) + "\n" for i in range(5)))
    imported = cli("item", "import", str(source))
    assert imported.exit_code == 0, imported.output
    exported = cli("item", "export", "-o", str(tmp_path / "out.csv"))
    assert exported.exit_code == 0, exported.output
    listed = cli("item", "list", "--limit", "100", "--json")
    assert listed.exit_code == 0 and listed.json()["total"] == len(ids) - 1 + 1 + 5
    bench = invoke(
        "--url", url, "bench", "--concurrency", "2", "--duration", "1s", "--warmup", "0.2s",
        "--quiet", env={"DMITEMS_DATABASE_POOL_SIZE": "2"},
    )
    assert bench.exit_code == 0, bench.output
    doctor = cli("doctor", "--json")
    schema = {check["name"]: check for check in doctor.json()["checks"]}["schema"]
    assert schema["status"] == "ok" and "revision 0002" in schema["detail"]


def test_the_api_serves_the_adopted_table(database_url: str) -> None:
    from fastapi.testclient import TestClient

    from dmitems.api import create_app
    from dmitems.config import load_settings

    ids = create_seed_table(database_url)
    assert upgrade(database_url, "--fill-price", "0", "--yes").exit_code == 0
    settings = load_settings(flags={"database_url": database_url, "database_pool_size": 2})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/health").json()["database"] == "connected"
        first = client.get(f"/items/{ids[0]}").json()
        assert first["name"] == "widget" and first["created_at"].startswith("2024-05-01T10:00:00")
        created = client.post("/items/create_item", json={"name": "api", "price": 1})
        assert created.status_code == 201 and created.json()["id"] == max(ids) + 1
        assert len(client.get("/items/read_items").json()) == len(ids) + 1


def test_a_table_in_dmitems_shape_without_version_row_is_stamped(database_url: str) -> None:
    from sqlalchemy import create_engine

    from dmitems.models import metadata
    from tests.seed_service import sync_url

    engine = create_engine(sync_url(database_url))
    metadata.create_all(engine)
    engine.dispose()
    dry = upgrade(database_url, "--dry-run")
    assert dry.exit_code == 0
    assert "INSERT INTO dmitems_alembic_version" in dry.stdout
    assert "ALTER TABLE" not in dry.stdout and "CREATE TABLE items" not in dry.stdout
    result = invoke("--url", database_url, "init-db", "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["stamped"] is True
    current = invoke("--url", database_url, "db", "current", "--json").json()
    assert current["revision"] == "0002" and current["action"] == "current"


def test_init_db_creates_at_the_latest_revision(database_url: str) -> None:
    result = invoke("--url", database_url, "init-db", "--json")
    assert result.exit_code == 0 and result.json()["created"] is True
    current = invoke("--url", database_url, "db", "current", "--json").json()
    assert current == {**current, "revision": "0002", "action": "current", "differences": []}
    history = invoke("db", "history")
    assert "base -> 0001" in history.stdout and "0001 -> 0002" in history.stdout


def read_seed(url: str) -> list[dict[str, Any]]:
    from sqlalchemy import create_engine, select

    from tests.seed_service import Item, sync_url

    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            table = Item.__table__
            return [dict(row._mapping) for row in connection.execute(select(table).order_by(table.c.id))]
    finally:
        engine.dispose()
