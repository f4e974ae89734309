"""Failures: the database down (503), its error text kept out of responses, generic 500s."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from tests.api.test_routes import PROBLEM, assert_problem
from tests.postgres_server import free_port


def _client(url: str, mode: str, **flags: Any) -> Any:
    from fastapi.testclient import TestClient

    from dmitems.api import create_app
    from dmitems.config import load_settings

    settings = load_settings(
        flags={"database_url": url, "server_mode": mode, "database_connect_timeout": 1, **flags}
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


UNREACHABLE = [
    "sqlite+aiosqlite:////nonexistent-dir/sub/items.db",
    pytest.param("postgresql", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize("target", UNREACHABLE)
def test_database_unreachable_is_503_with_retry_after(target: str, mode: str) -> None:
    url = target
    if target == "postgresql":
        url = f"postgresql+asyncpg://dmitems:pw-not-shown@127.0.0.1:{free_port()}/none"
    with _client(url, mode) as client:
        for response in (client.get("/items"), client.post("/items", json={"name": "a", "price": 1}),
                         client.get("/items/read_item/1")):
            if "read_item" in str(response.url):  # a seed route: FastAPI's {"detail"} body
                assert response.status_code == 503
                assert response.headers["content-type"] == "application/json"
                body = response.json()
            else:
                body = assert_problem(response, 503)
                assert body["type"] == "urn:dmitems:problem:503"
            assert response.headers["retry-after"].isdigit()
            assert "pw-not-shown" not in response.text and "127.0.0.1" not in response.text
            assert body["detail"] == "The database is unavailable; try again later."
        started = time.monotonic()
        health = client.get("/health")
        assert time.monotonic() - started < 2.0
        assert_problem(health, 503)
        assert health.json()["database"] == "unreachable"
        assert client.get("/livez").status_code == 200


def _add_rejecting_rule(database_url: str) -> None:
    """A real database rule that rejects the name 'forbidden' with text we can look for."""
    if database_url.startswith("sqlite"):
        import sqlite3

        path = database_url.split(":///", 1)[1]
        with sqlite3.connect(path) as connection:
            connection.execute(
                "CREATE TRIGGER secret_trigger_text BEFORE INSERT ON items "
                "WHEN NEW.name = 'forbidden' "
                "BEGIN SELECT RAISE(ABORT, 'secret driver text'); END"
            )
    else:
        import psycopg

        url = database_url.replace("postgresql+asyncpg", "postgresql")
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(
                "ALTER TABLE items ADD CONSTRAINT secret_constraint_text CHECK (name <> 'forbidden')"
            )


def test_database_error_text_never_reaches_the_body(
    make_client: Any, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    _add_rejecting_rule(database_url)
    caplog.set_level(logging.WARNING, logger="dmitems")
    response = client.post("/items", json={"name": "forbidden", "price": 1})
    body = assert_problem(response, 409)
    for leaked in ("secret", "INSERT", "relation", "constraint_text", "Traceback"):
        assert leaked not in response.text
    assert body["detail"] == "The database rejected the change (a constraint was violated)."
    # The server log has the details, with the request id.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert body["request_id"] in logged and "secret" in logged

    batch = client.post("/items/batch_create", json=[{"name": "ok", "price": 1},
                                                     {"name": "forbidden", "price": 2}])
    assert batch.status_code == 409 and batch.headers["content-type"] == "application/json"
    assert batch.json() == {"detail": body["detail"]}
    assert "secret" not in batch.text
    assert client.get("/items").json()["total"] == 0  # the batch was all or nothing


def test_missing_table_is_503_without_sql(make_client: Any, database_url: str) -> None:
    client = make_client()
    if database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(database_url.split(":///", 1)[1]) as connection:
            connection.execute("DROP TABLE items")
    else:
        import psycopg

        with psycopg.connect(database_url.replace("postgresql+asyncpg", "postgresql"),
                             autocommit=True) as connection:
            connection.execute("DROP TABLE items")
    response = client.get("/items/1")
    assert_problem(response, 503)
    for leaked in ("no such table", "relation", "SELECT", "does not exist"):
        assert leaked not in response.text


def test_unexpected_error_is_a_generic_500(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def explode() -> None:
        raise RuntimeError("password=hunter2 in SELECT * FROM secrets")

    client.app.add_api_route("/explode", explode)
    caplog.set_level(logging.ERROR, logger="dmitems")
    response = client.get("/explode", headers={"X-Request-ID": "req-500"})
    body = assert_problem(response, 500)
    assert response.headers["content-type"] == PROBLEM
    assert body["type"] == "urn:dmitems:problem:500"  # one scheme for every status
    assert body["detail"] == "An unexpected error occurred."
    for leaked in ("hunter2", "SELECT", "RuntimeError", "Traceback"):
        assert leaked not in response.text
    assert response.headers["x-request-id"] == "req-500"
    assert any("req-500" in record.getMessage() and record.exc_info for record in caplog.records)
