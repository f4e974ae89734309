"""``[database] schema`` and ``[database] table``: every command uses the configured table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import invoke
from tests.seed_service import sync_url


def _tables(url: str, schema: str | None) -> set[str]:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(sync_url(url))
    try:
        return set(inspect(engine).get_table_names(schema=schema))
    finally:
        engine.dispose()


def _use_everything(url: str, env: dict[str, str], tmp_path: Path) -> None:
    def cli(*args: str) -> Any:
        return invoke("--url", url, *args, env=env)

    created = cli("init-db", "--json")
    assert created.exit_code == 0, created.output
    assert created.json()["created"] is True
    added = cli("item", "add", "--name", "a", "--price", "1", "--json")
    assert added.exit_code == 0, added.output
    item = added.json()
    assert cli("item", "update", str(item["id"]), "--price", "2").exit_code == 0
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"name": f"n{i}", "price": i}) + "\n" for i in range(3)))
    assert cli("item", "import", str(source)).exit_code == 0
    assert cli("item", "export", "-o", str(tmp_path / "out.csv")).exit_code == 0
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 1 + 4
    listed = cli("item", "list", "--json")
    assert listed.exit_code == 0 and listed.json()["total"] == 4
    current = cli("db", "current", "--json").json()
    assert current["table"] == "stock" and current["action"] == "current"
    doctor = cli("doctor", "--json")
    schema = {check["name"]: check for check in doctor.json()["checks"]}["schema"]
    assert schema["status"] == "ok" and "table stock" in schema["detail"]
    bench = invoke(
        "--url", url, "bench", "--concurrency", "2", "--duration", "1s", "--warmup", "0.2s",
        "--quiet", env={**env, "DMITEMS_DATABASE_POOL_SIZE": "2"},
    )
    assert bench.exit_code == 0, bench.output
    assert cli("item", "list", "--json").json()["total"] == 4  # bench removed its own rows


def _api_reads(url: str, **flags: Any) -> None:
    from fastapi.testclient import TestClient

    from dmitems.api import create_app
    from dmitems.config import load_settings

    settings = load_settings(flags={"database_url": url, "database_pool_size": 2, **flags})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/health").json()["database"] == "connected"
        assert len(client.get("/items/read_items").json()) == 4
        assert client.post("/items/create_item", json={"name": "api", "price": 1}).status_code == 201


@pytest.mark.postgres
@pytest.mark.filterwarnings("ignore:.*httpx2.*")
def test_schema_and_table_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(sync_url(pg_url))
    with engine.begin() as connection:
        connection.execute(text("CREATE SCHEMA app"))
    engine.dispose()
    env = {"DMITEMS_DATABASE_SCHEMA": "app", "DMITEMS_DATABASE_TABLE": "stock"}
    _use_everything(pg_url, env, tmp_path)
    assert _tables(pg_url, "app") == {"stock", "dmitems_alembic_version"}
    assert _tables(pg_url, None) == set()
    _api_reads(pg_url, database_schema="app", database_table="stock")


@pytest.mark.filterwarnings("ignore:.*httpx2.*")
def test_table_name_on_sqlite_from_the_config_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'named.db'}"
    config = tmp_path / "dmitems.toml"
    config.write_text('[database]\ntable = "stock"\n')
    _use_everything(url, {"DMITEMS_CONFIG": str(config)}, tmp_path)
    assert _tables(url, None) == {"stock", "dmitems_alembic_version"}
    _api_reads(url, database_table="stock")


def test_a_table_name_that_is_not_an_identifier_is_exit_2(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    result = invoke("--url", url, "init-db", env={"DMITEMS_DATABASE_TABLE": "items; DROP"})
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
