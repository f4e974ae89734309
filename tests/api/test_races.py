"""Races against a real `dmitems serve`: 100 concurrent conditional updates or deletes of
one item, in async and sync mode, on SQLite and PostgreSQL.  Exactly one wins."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.api.served import start, stop

CLIENTS = 100
pytestmark = pytest.mark.slow  # a real server per case


async def _burst(base: str, method: str, path: str, **request: Any) -> list[httpx.Response]:
    """``CLIENTS`` copies of one request, each on a new connection of its own, sent together.
    (No keep-alive: a kept connection that the server closes as it is reused, after its
    5 s idle limit on a loaded host, would fail the request before it reaches dmitems.)"""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        return list(await asyncio.gather(
            *(client.request(method, path, **request) for _ in range(CLIENTS))
        ))


def burst(base: str, method: str, path: str, **request: Any) -> tuple[Counter[int], list[Any]]:
    responses = asyncio.run(_burst(base, method, path, **request))
    return Counter(response.status_code for response in responses), responses


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_one_conditional_write_wins(database_url: str, mode: str) -> None:
    process, base = start(database_url, "--mode", mode)
    try:
        item = httpx.post(f"{base}/items", json={"name": "抢购", "price": 100}, timeout=10).json()
        url = f"/items/{item['id']}"

        statuses, responses = burst(base, "PATCH", url, json={"price": 1},
                                    headers={"If-Match": '"1"'})
        assert statuses == {200: 1, 412: CLIENTS - 1}, statuses
        losers = [r.json() for r in responses if r.status_code == 412]
        assert {loser["current_version"] for loser in losers} == {2}
        current = httpx.get(f"{base}{url}", timeout=10).json()
        assert current["version"] == 2 and current["price"] == 1  # applied once

        statuses, _ = burst(base, "DELETE", url, headers={"If-Match": '"2"'})
        assert statuses == {204: 1, 404: CLIENTS - 1}, statuses

        item = httpx.post(f"{base}/items", json={"name": "再抢", "price": 1}, timeout=10).json()
        statuses, _ = burst(base, "DELETE", f"/items/{item['id']}")  # no If-Match
        assert statuses == {204: 1, 404: CLIENTS - 1}, statuses

        # The seed's delete: one 200 with its message, the rest its 404.
        item = httpx.post(f"{base}/items/create_item", json={"name": "旧", "price": 1},
                          timeout=10).json()
        statuses, responses = burst(base, "DELETE", f"/items/delete_item/{item['id']}")
        assert statuses == {200: 1, 404: CLIENTS - 1}, statuses
        assert {r.text for r in responses if r.status_code == 404} == {'{"detail":"商品不存在"}'}
        assert httpx.get(f"{base}/items", timeout=10).json()["total"] == 0
    finally:
        code, stderr = stop(process)
    assert code == 0 and "Traceback" not in stderr, stderr
