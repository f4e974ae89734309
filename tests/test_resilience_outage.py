"""PostgreSQL lost under load: ``dmitems serve`` degrades to 503 and comes back by itself.

A dedicated PostgreSQL server (not the suite's shared one: this test kills it)
runs with ``synchronous_commit=on``, so a commit that was acknowledged is a
commit that survives a crash.  Against ``dmitems serve`` in each server mode,
20 clients send a mix of creates, reads, lists and updates while:

* the server is stopped with ``pg_ctl stop -m immediate`` (a crash) and started
  again.  Guarded: no 500 at all; every failure is a 503 problem+json with
  ``Retry-After``; ``/health`` answers 503 within 2 s while the database is down;
  the service answers ``/health`` 200 and accepts a create within 5 s of the
  restart, without restarting dmitems; every id that got a 201 is in the table.
* the server is frozen with SIGSTOP.  Guarded: ``/health`` answers (503) within
  2 s; requests beyond the pool's connections get a 503 by ``pool_timeout``; once
  the database thaws, every request in flight finishes, and none got a 500.

The bounds are generous (a loaded 2-core CI box) and the run is a few seconds
per mode; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.postgres_server import PostgresServer, free_port, start_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CLIENTS = 20
POOL_SIZE = 8
POOL_TIMEOUT = 2.0
HEALTH_BOUND = 2.0
RECOVERY_BOUND = 5.0


@pytest.fixture
def crashable_server() -> Iterator[PostgresServer]:
    try:
        server = start_server(extra_options="-c synchronous_commit=on")
    except FileNotFoundError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {exc}")
        pytest.skip(str(exc))
    yield server
    server.stop()


@dataclass
class Tally:
    """What the clients saw."""

    statuses: dict[int, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)  # anything that is neither success nor a proper 503
    created: list[int] = field(default_factory=list)

    def record(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.status_code < 400:
            return
        proper = (
            response.status_code == 503
            and response.headers.get("content-type", "").startswith("application/problem+json")
            and response.headers.get("retry-after", "").isdigit()
            and response.json().get("status") == 503
        )
        if not proper:
            self.bad.append(f"{response.request.method} {response.request.url.path}: "
                            f"{response.status_code} {response.text[:200]}")


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        process.log.append(line)  # type: ignore[attr-defined]


def _stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM the server, wait for it, and return everything it wrote to stderr."""
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    time.sleep(0.2)  # the drain thread reads the last lines
    return "".join(process.log)  # type: ignore[attr-defined]


def _serve(url: str, mode: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMITEMS_")}
    env.update(
        DMITEMS_DATABASE_URL=url,
        DMITEMS_DATABASE_POOL_SIZE=str(POOL_SIZE),
        DMITEMS_DATABASE_POOL_TIMEOUT=str(POOL_TIMEOUT),
        DMITEMS_DATABASE_CONNECT_TIMEOUT="2",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "dmitems", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--mode", mode, "--init-db"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )
    # Drain the server's log as it comes: an outage logs one line per failed request, and
    # a pipe nobody reads fills up (64 KiB) and then blocks the server on its next log line.
    process.log = []  # type: ignore[attr-defined]
    threading.Thread(target=_drain, args=(process,), daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {''.join(process.log)}")  # type: ignore[attr-defined]
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("serve did not start")


async def _client(http: httpx.AsyncClient, tally: Tally, stop: asyncio.Event, seed: int) -> None:
    chooser = random.Random(seed)
    while not stop.is_set():
        known = tally.created[-50:] or [1]
        roll = chooser.random()
        try:
            if roll < 0.4:
                response = await http.post("/items", json={"name": f"c{seed}", "price": seed})
                if response.status_code == 201:
                    tally.created.append(response.json()["id"])
            elif roll < 0.75:
                response = await http.get(f"/items/{chooser.choice(known)}")
            elif roll < 0.85:
                response = await http.get("/items", params={"limit": 5})
            else:
                response = await http.patch(f"/items/{chooser.choice(known)}",
                                            json={"price": chooser.randrange(1000)})
        except httpx.HTTPError as exc:
            tally.bad.append(f"transport error: {type(exc).__name__}")
            continue
        if response.status_code == 404 and response.request.method != "POST":
            continue  # only possible for the placeholder id 1 before the first create
        tally.record(response)


async def _timed_health(http: httpx.AsyncClient) -> tuple[int, float]:
    """/health's status and its time, less the delay /livez (no database) sees at the same
    moment: on a loaded CI box that is scheduling, not dmitems waiting on the database."""
    async def timed(path: str) -> tuple[int, float]:
        began = time.monotonic()
        response = await http.get(path, timeout=10)
        return response.status_code, time.monotonic() - began

    (status, seconds), (_, baseline) = await asyncio.gather(timed("/health"), timed("/livez"))
    return status, max(0.0, seconds - baseline)


async def _crash_and_restart(server: PostgresServer, base: str) -> dict[str, Any]:
    tally, stop = Tally(), asyncio.Event()
    # Idle connections are dropped before uvicorn's keep-alive timeout (5 s) closes them, so
    # a ReadError can only mean the server dropped a request, not a keep-alive race.
    limits = httpx.Limits(max_connections=CLIENTS + 5, keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        clients = [asyncio.create_task(_client(http, tally, stop, seed)) for seed in range(CLIENTS)]
        await asyncio.sleep(1.5)
        created_before = len(tally.created)
        await asyncio.to_thread(server.halt)
        await asyncio.sleep(0.3)
        down_health = await _timed_health(http)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(server.resume)
        restarted = time.monotonic()
        recovered = None
        while time.monotonic() - restarted < 15:
            try:
                status, _ = await _timed_health(http)
                created = await http.post("/items", json={"name": "probe", "price": 1},
                                          timeout=10)
            except httpx.TimeoutException:
                continue  # not recovered yet (and the clock runs on)
            if created.status_code == 201:
                tally.created.append(created.json()["id"])
            if status == 200 and created.status_code == 201:
                recovered = time.monotonic() - restarted
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*clients)
    return {"tally": tally, "down_health": down_health, "recovered": recovered,
            "created_before": created_before}


def _ids_in_table(url: str) -> set[int]:
    import psycopg

    with psycopg.connect(url.replace("postgresql+asyncpg", "postgresql")) as connection:
        return {row[0] for row in connection.execute("SELECT id FROM items")}


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_crash_under_load_loses_no_acknowledged_write(crashable_server: PostgresServer,
                                                      mode: str) -> None:
    url = crashable_server.url("postgres")
    process, base = _serve(url, mode)
    try:
        seen = asyncio.run(_crash_and_restart(crashable_server, base))
    finally:
        stderr = _stop(process)
    tally: Tally = seen["tally"]
    assert seen["created_before"] > 0, "no load reached the database before the crash"
    assert tally.bad == [], tally.bad[:10]
    assert 500 not in tally.statuses
    assert tally.statuses.get(503, 0) > 0, f"the outage was not seen: {tally.statuses}"
    status, seconds = seen["down_health"]
    assert status == 503 and seconds < HEALTH_BOUND, seen["down_health"]
    assert seen["recovered"] is not None and seen["recovered"] < RECOVERY_BOUND, seen["recovered"]
    missing = set(tally.created) - _ids_in_table(url)
    assert not missing, f"{len(missing)} acknowledged creates lost: {sorted(missing)[:10]}"
    assert "Traceback" not in stderr


async def _frozen(server: PostgresServer, base: str) -> dict[str, Any]:
    tally = Tally()
    limits = httpx.Limits(keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        created = await http.post("/items", json={"name": "before", "price": 1})
        assert created.status_code == 201
        item = created.json()["id"]
        pids = server.pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            began = time.monotonic()
            requests = [asyncio.create_task(http.get(f"/items/{item}"))
                        for _ in range(POOL_SIZE * 2)]
            health = await _timed_health(http)
            done, _ = await asyncio.wait(requests, timeout=POOL_TIMEOUT + 3)
            answered_in_time = [task.result() for task in done]
            frozen_for = time.monotonic() - began
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        for response in await asyncio.gather(*requests):
            tally.record(response)
        after = await http.get(f"/items/{item}")
    return {"tally": tally, "health": health, "answered": answered_in_time,
            "frozen_for": frozen_for, "after": after.status_code}


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_frozen_database_gets_503_by_pool_timeout(crashable_server: PostgresServer,
                                                  mode: str) -> None:
    url = crashable_server.url("postgres")
    process, base = _serve(url, mode)
    try:
        seen = asyncio.run(_frozen(crashable_server, base))
    finally:
        _stop(process)
    status, seconds = seen["health"]
    assert status == 503 and seconds < HEALTH_BOUND, seen["health"]
    answered = seen["answered"]
    # Requests beyond the pool's connections wait pool_timeout for one, then get a 503.
    assert len(answered) >= POOL_SIZE, (len(answered), seen["frozen_for"])
    assert all(response.status_code == 503 for response in answered), [
        response.status_code for response in answered]
    tally: Tally = seen["tally"]
    assert tally.bad == [] and 500 not in tally.statuses, (tally.bad, tally.statuses)
    assert seen["after"] == 200
