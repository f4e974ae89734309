"""`dmitems serve` as a real subprocess: CRUD over HTTP, SIGTERM, several workers on SQLite."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.api.served import start as _start
from tests.api.served import stop as _stop


@pytest.fixture
def served(database_url: str) -> Iterator[tuple[Any, str]]:
    process, base = _start(database_url)
    yield process, base
    if process.poll() is None:
        process.kill()
        process.communicate()


def test_serve_crud_over_http_then_sigterm(served: tuple[Any, str]) -> None:
    process, base = served
    with httpx.Client(base_url=base, timeout=10) as http:
        created = http.post("/items", json={"name": "显示器", "price": 1299})
        assert created.status_code == 201
        item_id = created.json()["id"]
        assert http.get(f"/items/{item_id}").json()["price"] == 1299
        patched = http.patch(f"/items/{item_id}", json={"price": 999}, headers={"If-Match": '"1"'})
        assert patched.status_code == 200 and patched.json()["version"] == 2
        assert http.get("/items/read_items").json()[0]["price"] == 999
        assert http.delete(f"/items/{item_id}", headers={"If-Match": '"2"'}).status_code == 204
        assert http.get(f"/items/{item_id}").status_code == 404
        assert http.get("/health").json()["status"] == "healthy"
    code, stderr = _stop(process)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert "serving http://127.0.0.1:" in stderr and "stopped" in stderr
    assert "Finished server process" in stderr


def test_serve_refuses_a_busy_port(tmp_path: Any) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "dmitems", "--url", f"sqlite+aiosqlite:///{tmp_path}/x.db",
             "serve", "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cannot listen on" in result.stderr
    assert "Traceback" not in result.stderr


def test_two_workers_on_one_sqlite_file_never_lock(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    process, base = _start(url, "--workers", "2", env={"DMITEMS_API_KEY": "k-secret-77"})
    try:
        headers = {"Authorization": "Bearer k-secret-77"}

        def create(index: int) -> int:
            with httpx.Client(base_url=base, timeout=60, headers=headers) as http:
                return http.post("/items", json={"name": f"w{index}", "price": index}).status_code

        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = list(pool.map(create, range(400)))
        assert statuses.count(201) == 400, sorted(set(statuses))
        total = httpx.get(f"{base}/items", params={"limit": 1}, timeout=10).json()["total"]
        assert total == 400
    finally:
        code, stderr = _stop(process)
    assert code == 0, stderr
    assert "Traceback" not in stderr and "locked" not in stderr
    assert "k-secret-77" not in stderr


def test_server_start_up_tunes_the_garbage_collector() -> None:
    import gc

    from dmitems.api.server import YOUNG_COLLECTION_THRESHOLD, freeze_startup_objects

    saved = gc.get_threshold()
    try:
        freeze_startup_objects()
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *saved[1:])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)
