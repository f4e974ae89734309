"""The secrets sweep: a distinctive password wherever a user can put one, and an API key.

The password goes in the URL's userinfo, in its query (``?password=``), in the
environment (``DMITEMS_DATABASE_PASSWORD``) and in the TOML file; a stale,
overridden password sits in the URL's userinfo beside the last three, and the
API key comes from the environment or the file.  Every command then runs with
``--debug`` (the chattiest output), failures included, and ``serve`` runs with
the access log on.  None of the secrets may appear in stdout, stderr, the
server's log lines or any file a command writes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cli_runner import invoke
from tests.postgres_server import PostgresServer, free_port

REAL = "Sweep-Real-Pw-4e7d1a"
STALE = "Sweep-Stale-Pw-90c2b3"
API_KEY = "Sweep-Api-Key-31fa77"
SECRETS = (REAL, STALE, API_KEY)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@dataclass
class Place:
    """Where the password is, and what the command line and environment look like."""

    name: str
    url: str
    env: dict[str, str]
    config: Path | None = None

    def args(self) -> list[str]:
        config = ["--config", str(self.config)] if self.config else []
        return [*config, "--url", self.url]


def _admin(server: PostgresServer, *statements: str) -> None:
    import psycopg

    url = server.url("postgres", driver="psycopg").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


@pytest.fixture
def sweep_database(pg_server: PostgresServer) -> Iterator[tuple[str, str]]:
    """A database owned by a role whose password is REAL: (host:port/db, role)."""
    suffix = uuid.uuid4().hex[:10]
    role, database = f"sweep_{suffix}", f"sweep_{suffix}"
    _admin(pg_server, f"CREATE ROLE {role} LOGIN PASSWORD '{REAL}'",
           f'CREATE DATABASE "{database}" OWNER {role}')
    yield f"127.0.0.1:{pg_server.port}/{database}", role
    _admin(pg_server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', f"DROP ROLE {role}")


def _places(where: str, role: str, tmp_path: Path) -> list[Place]:
    base = f"postgresql+asyncpg://{role}"
    toml = tmp_path / "dmitems.toml"
    toml.write_text(f'[database]\npassword = "{REAL}"\n\n[server]\napi_key = "{API_KEY}"\n')
    key = {"DMITEMS_API_KEY": API_KEY}
    return [
        Place("userinfo", f"{base}:{REAL}@{where}", key),
        Place("query", f"{base}:{STALE}@{where}?password={REAL}&application_name=sweep", key),
        Place("environment", f"{base}:{STALE}@{where}", {**key, "DMITEMS_DATABASE_PASSWORD": REAL}),
        Place("toml", f"{base}:{STALE}@{where}", {}, config=toml),
    ]


def _commands(tmp_path: Path) -> list[list[str]]:
    data = tmp_path / "in.jsonl"
    data.write_text('{"name": "a", "price": 1}\n{"name": "b", "price": 2}\n')
    out = tmp_path / "out"
    return [
        ["init-db"],
        ["item", "add", "--name", "键盘", "--price", "199", "--json"],
        ["item", "get", "1", "--json"],
        ["item", "get", "999"],
        ["item", "list", "--json"],
        ["item", "list"],
        ["item", "update", "1", "--price", "179", "--expect-version", "1", "--json"],
        ["item", "update", "1", "--price", "1", "--expect-version", "9"],
        ["item", "import", str(data), "--json"],
        ["item", "import", str(data), "--format", "csv"],
        ["item", "export", "--format", "json", "-o", f"{out}-export.json", "--json"],
        ["item", "export", "--format", "jsonl"],
        ["item", "generate", "3", "-o", f"{out}-generated.csv"],
        ["item", "delete", "1", "--yes", "--json"],
        ["config", "show"],
        ["config", "show", "--json"],
        ["doctor"],
        ["doctor", "--json"],
        ["bench", "--requests", "20", "--warmup", "0s", "--concurrency", "2", "--quiet",
         "--json", f"{out}-bench.json", "--fail-if", "p99>1ms"],
        ["bench", "compare", f"{out}-bench.json", f"{out}-bench.json", "--json"],
        ["init-db", "--drop"],
    ]


def _assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} leaked in {where}:\n{text[-3000:]}"


def _serve(place: Place, tmp_path: Path, *extra: str) -> str:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMITEMS_")}
    env.update(place.env)
    process = subprocess.Popen(
        [sys.executable, "-m", "dmitems", "--debug", *place.args(), "serve", "--port", str(port),
         "--access-log", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=10) as http:
            auth = {"Authorization": f"Bearer {API_KEY}"}
            assert http.post("/items", json={"name": "x", "price": 1}, headers=auth).status_code == 201
            wrong = {"Authorization": f"Bearer {API_KEY}-wrong"}
            refused = http.post("/items", json={"name": "x", "price": 1}, headers=wrong)
            assert refused.status_code == 401
            _assert_clean(refused.text, "a 401 body")
            for response in (http.get("/items"), http.get("/health"), http.get("/items/999")):
                _assert_clean(response.text + str(response.headers), "a response")
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert "GET /items" in stdout + stderr, "the access log was not on"
    return stdout + stderr


def test_no_secret_is_ever_shown(sweep_database: tuple[str, str], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    where, role = sweep_database
    for place in _places(where, role, tmp_path):
        with monkeypatch.context() as patch:
            for key, value in place.env.items():
                patch.setenv(key, value)
            for command in _commands(tmp_path):
                outcome = invoke("--debug", *place.args(), *command)
                _assert_clean(outcome.output, f"{place.name}: dmitems {' '.join(command)}")
                assert outcome.exception is None, (place.name, command, outcome.exception)
            # The same places with a wrong database: the error path names the URL.
            broken = Place(place.name, place.url.replace(where, where + "_missing"), place.env,
                           place.config)
            for debug in ([], ["--debug"]):
                outcome = invoke(*debug, *broken.args(), "item", "list")
                assert outcome.exit_code == 3, outcome.output
                _assert_clean(outcome.output, f"{place.name}: a wrong database")
        for written in tmp_path.glob("out-*"):
            _assert_clean(written.read_text(), f"{place.name}: {written.name}")
        assert invoke(*place.args(), "init-db", env=place.env).exit_code == 0
        _assert_clean(_serve(place, tmp_path), f"{place.name}: serve's log")


def test_serve_workers_and_http_bench_keep_secrets(sweep_database: tuple[str, str],
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    where, role = sweep_database
    place = _places(where, role, tmp_path)[1]  # the query: the place masking found last
    for key, value in place.env.items():
        monkeypatch.setenv(key, value)
    assert invoke(*place.args(), "init-db").exit_code == 0
    _assert_clean(_serve(place, tmp_path, "--workers", "2"), "serve --workers 2")
    report = tmp_path / "http-bench.json"
    outcome = invoke("--debug", *place.args(), "bench", "--target", "http", "--requests", "20",
                     "--warmup", "0s", "--concurrency", "2", "--mode", "async", "--quiet",
                     "--json", str(report))
    assert outcome.exit_code == 0, outcome.output
    _assert_clean(outcome.output, "bench --target http")
    _assert_clean(report.read_text(), "the http bench report")
