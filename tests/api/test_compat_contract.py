"""The seed's routes against the seed itself.

The article's service (``tests/api/seed_reference.py``, on a SQLite file) and dmitems
(SQLite and PostgreSQL, async and sync mode) get the same requests: every request of
issue 14's table and the valid ones.  Status, content type, body shape (values too,
where they are the client's data) and the stored rows must agree, except in the cases
listed in ``EXCEPTIONS``, where the seed answered 500 or stored invalid data.  Then
the article's own client script runs against ``dmitems serve``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.api.seed_reference import create_seed_app
from tests.api.served import start, stop

BIG = 2**63  # one past the largest 64-bit id
# What dmitems adds to an item; created_at/updated_at are null in the seed's SQLite table
# (its server defaults live only on its DM table), timestamps in dmitems'.
EXTRA_ITEM_KEYS = {"version"}
TIMESTAMPS = {"created_at", "updated_at"}


@dataclass
class Step:
    label: str
    method: str
    path: str
    body: Any = None
    raw: bytes | None = None
    save: str | None = None  # remember the created item's id under this name


STEPS = [
    Step("create", "POST", "/items/create_item",
         {"name": "机械键盘", "description": "87 键", "price": 199}, save="a"),
    Step("create without description", "POST", "/items/create_item",
         {"name": "鼠标", "price": 99}, save="b"),
    Step("create: unknown fields ignored", "POST", "/items/create_item",
         {"name": "显示器", "price": 1299, "color": "red", "id": 5}),
    Step("create: price 2.0 is 2", "POST", "/items/create_item", {"name": "耳机", "price": 2.0}),
    Step("create: price as text", "POST", "/items/create_item", {"name": "音箱", "price": "7"}),
    Step("create: name kept as sent", "POST", "/items/create_item", {"name": "  键盘 ", "price": 1}),
    Step("create: price 0", "POST", "/items/create_item", {"name": "赠品", "price": 0}),
    Step("create: missing price", "POST", "/items/create_item", {"name": "x"}),
    Step("create: empty name", "POST", "/items/create_item", {"name": "", "price": 1}),
    Step("create: name too long", "POST", "/items/create_item", {"name": "n" * 256, "price": 1}),
    Step("create: negative price", "POST", "/items/create_item", {"name": "x", "price": -1}),
    Step("create: price 2.5", "POST", "/items/create_item", {"name": "x", "price": 2.5}),
    Step("create: description too long", "POST", "/items/create_item",
         {"name": "x", "description": "d" * 501, "price": 1}),
    Step("create: malformed JSON", "POST", "/items/create_item", raw=b'{"name": "x", "price": 1'),
    Step("create: not an object", "POST", "/items/create_item", [1]),
    Step("read_items", "GET", "/items/read_items"),
    Step("read_items: a page", "GET", "/items/read_items?skip=1&limit=2"),
    Step("read_items: skip 3,000,000,000", "GET", "/items/read_items?skip=3000000000"),
    Step("read_items: limit 0", "GET", "/items/read_items?limit=0"),
    Step("read_items: limit 1001", "GET", "/items/read_items?limit=1001"),
    Step("read_items: skip -1", "GET", "/items/read_items?skip=-1"),
    Step("read_items: limit not a number", "GET", "/items/read_items?limit=ten"),
    Step("read_item", "GET", "/items/read_item/{a}"),
    Step("read_item: missing", "GET", "/items/read_item/424242"),
    Step("read_item: id 0", "GET", "/items/read_item/0"),
    Step("read_item: id not a number", "GET", "/items/read_item/abc"),
    Step("read_item: no id", "GET", "/items/read_item"),
    Step("update: whole object, name null", "PUT", "/items/update_item/{a}",
         {"name": None, "description": None, "price": 20}),
    Step("update: description null keeps it", "PUT", "/items/update_item/{a}",
         {"description": None}),
    Step("update: {} changes nothing", "PUT", "/items/update_item/{a}", {}),
    Step("update: unknown fields ignored", "PUT", "/items/update_item/{a}",
         {"color": "red", "id": 5, "price": 21}),
    Step("update: price 3.0 is 3", "PUT", "/items/update_item/{b}", {"price": 3.0}),
    Step("update: name and description", "PUT", "/items/update_item/{b}",
         {"name": "无线鼠标", "description": "2.4G"}),
    Step("update: negative price", "PUT", "/items/update_item/{a}", {"price": -1}),
    Step("update: empty name", "PUT", "/items/update_item/{a}", {"name": ""}),
    Step("update: missing item", "PUT", "/items/update_item/424242", {"price": 1}),
    Step("update: id 0", "PUT", "/items/update_item/0", {}),
    Step("update: id -1", "PUT", "/items/update_item/-1", {"price": 1}),
    Step("update: id not a number", "PUT", "/items/update_item/abc", {"price": 1}),
    Step("batch_create", "POST", "/items/batch_create",
         [{"name": "批量1", "price": 1}, {"name": "批量2", "description": "二", "price": 2.0},
          {"name": "批量3", "price": 3, "color": "red"}]),
    Step("batch_create: []", "POST", "/items/batch_create", []),
    Step("batch_create: an invalid item", "POST", "/items/batch_create",
         [{"name": "ok", "price": 1}, {"name": "x"}]),
    Step("batch_create: not a list", "POST", "/items/batch_create", {"name": "x", "price": 1}),
    Step("transaction_example", "POST", "/items/transaction_example"),
    Step("delete", "DELETE", "/items/delete_item/{b}"),
    Step("delete: again", "DELETE", "/items/delete_item/{b}"),
    Step("delete: id 0", "DELETE", "/items/delete_item/0"),
    Step("wrong method: GET create_item", "GET", "/items/create_item"),
    Step("wrong method: POST read_items", "POST", "/items/read_items"),
    Step("wrong method: DELETE read_item", "DELETE", "/items/read_item/{a}"),
    Step("wrong method: GET update_item", "GET", "/items/update_item/{a}"),
    Step("wrong method: PUT delete_item", "PUT", "/items/delete_item/{a}"),
    Step("read_items at the end", "GET", "/items/read_items?limit=1000"),
    Step("health", "GET", "/health"),
]


@dataclass
class Exception_:
    """A case where dmitems answers differently from the seed, on purpose (README table)."""

    label: str
    method: str
    path: str
    body: Any
    seed_status: int
    seed_stores: bool  # the seed wrote a row that dmitems refuses
    status: int
    where: list[Any] = field(default_factory=list)  # the 422's loc in dmitems' body


EXCEPTIONS = [
    Exception_("read_item: id >= 2^63", "GET", f"/items/read_item/{BIG}", None, 500, False, 422,
               ["path", "item_id"]),
    Exception_("update: id >= 2^63", "PUT", f"/items/update_item/{BIG}", {"price": 1}, 500,
               False, 422, ["path", "item_id"]),
    Exception_("delete: id >= 2^63", "DELETE", f"/items/delete_item/{BIG}", None, 500, False, 422,
               ["path", "item_id"]),
    Exception_("read_items: skip >= 2^63", "GET", f"/items/read_items?skip={BIG}", None, 500,
               False, 422, ["query", "skip"]),
    Exception_("create: price >= 10^20", "POST", "/items/create_item",
               {"name": "x", "price": 10**20}, 500, False, 422, ["body", "price"]),
    Exception_("create: price above the 32-bit column", "POST", "/items/create_item",
               {"name": "x", "price": 2**31}, 201, True, 422, ["body", "price"]),
    Exception_("create: blank name", "POST", "/items/create_item", {"name": "   ", "price": 1},
               201, True, 422, ["body", "name"]),
    Exception_("create: true as price", "POST", "/items/create_item", {"name": "x", "price": True},
               201, True, 422, ["body", "price"]),
    Exception_("update: true as price", "PUT", "/items/update_item/{a}", {"price": True}, 200,
               True, 422, ["body", "price"]),
    Exception_("update: blank name", "PUT", "/items/update_item/{a}", {"name": " \t"}, 200, True,
               422, ["body", "name"]),
    Exception_("batch_create: over batch_max (3 here)", "POST", "/items/batch_create",
               [{"name": f"n{i}", "price": i} for i in range(4)], 200, True, 413),
]


# -- the two services ---------------------------------------------------------------


class Side:
    """One service under test, with its own ids for the items a scenario created."""

    def __init__(self, client: Any, rows: Any) -> None:
        self.client, self.rows, self.ids = client, rows, {}

    def send(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
        path = path.format(**self.ids)
        if raw is not None:
            return self.client.request(method, path, content=raw,
                                       headers={"content-type": "application/json"})
        if body is None:
            return self.client.request(method, path)
        return self.client.request(method, path, json=body)


def stored_rows(url: str) -> list[tuple[Any, ...]]:
    """(name, description, price) of every row in id order, read from the database itself."""
    from sqlalchemy import create_engine, text

    sync_url = url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
    engine = create_engine(sync_url)
    try:
        with engine.connect() as connection:
            query = text("SELECT name, description, price FROM items ORDER BY id")
            return [tuple(row) for row in connection.execute(query)]
    finally:
        engine.dispose()


@pytest.fixture
def seed(tmp_path: Any) -> Iterator[Side]:
    from fastapi.testclient import TestClient

    url = f"sqlite+aiosqlite:///{tmp_path / 'seed.db'}"
    with TestClient(create_seed_app(url), raise_server_exceptions=False) as client:
        yield Side(client, lambda: stored_rows(url))


@pytest.fixture
def dmitems_side(make_client: Any, database_url: str) -> Any:
    def make(**settings: Any) -> Side:
        return Side(make_client(**settings), lambda: stored_rows(database_url))

    return make


# -- comparing answers -------------------------------------------------------------------


def shape(body: Any, side: Side | None = None) -> Any:
    """What a client of the seed reads from ``body``: keys and JSON types, and the values
    that are its data (item fields, messages, error locations and types)."""
    if isinstance(body, list):
        return [shape(entry, side) for entry in body]
    if not isinstance(body, dict):
        return body
    if "loc" in body and "msg" in body:  # one FastAPI validation error
        return {"keys": sorted(body), "type": body["type"], "loc": body["loc"]}
    if "id" in body and "price" in body:  # an item
        assert set(body) - EXTRA_ITEM_KEYS == {"id", "name", "description", "price", *TIMESTAMPS}
        for key in TIMESTAMPS:
            assert body[key] is None or isinstance(body[key], str)
        return {key: body[key] for key in ("name", "description", "price")}
    if "timestamp" in body:  # the delete's message, /health
        assert isinstance(body["timestamp"], str)
        return {key: value for key, value in body.items() if key not in ("timestamp", "item_id")}
    return {key: shape(value, side) for key, value in body.items()}


def compare(step: Step, seed: Side, ours: Side) -> None:
    expected = seed.send(step.method, step.path, step.body, step.raw)
    got = ours.send(step.method, step.path, step.body, step.raw)
    where = f"{step.label}: seed {expected.status_code} {expected.text[:200]!r}, dmitems {got.text[:300]!r}"
    assert got.status_code == expected.status_code, where
    assert got.headers.get("content-type") == expected.headers.get("content-type"), where
    assert got.headers.get("allow") == expected.headers.get("allow"), where
    assert shape(got.json()) == shape(expected.json()), where
    if step.path.startswith("/items/delete_item/") and got.status_code == 200:
        assert got.json()["item_id"] == ours.ids["b"] and expected.json()["item_id"] == seed.ids["b"]
    if step.save:
        seed.ids[step.save], ours.ids[step.save] = expected.json()["id"], got.json()["id"]
    assert ours.rows() == seed.rows(), f"{step.label}: stored rows differ"


def test_every_request_answers_as_the_seed_does(seed: Side, dmitems_side: Any) -> None:
    ours = dmitems_side()
    for step in STEPS:
        compare(step, seed, ours)
    assert len(seed.rows()) == 11  # the scenario did write what it meant to


@pytest.mark.parametrize("case", EXCEPTIONS, ids=[case.label for case in EXCEPTIONS])
def test_where_the_seed_was_wrong_dmitems_stays_right(
    case: Exception_, seed: Side, dmitems_side: Any
) -> None:
    ours = dmitems_side(server_batch_max=3)
    for side in (seed, ours):  # an item to update
        side.ids["a"] = side.send("POST", "/items/create_item", {"name": "a", "price": 5}).json()["id"]
    before = ours.rows()
    expected = seed.send(case.method, case.path, case.body)
    got = ours.send(case.method, case.path, case.body)
    assert expected.status_code == case.seed_status, expected.text
    assert (seed.rows() != before) == case.seed_stores
    assert got.status_code == case.status, got.text
    assert got.headers["content-type"] == "application/json"
    assert ours.rows() == before  # nothing written
    detail = got.json()["detail"]
    if case.status == 422:
        assert [error["loc"] for error in detail] == [case.where]
        assert all({"type", "loc", "msg"} <= set(error) for error in detail)
    else:
        assert "at most 3" in detail
    if case.seed_status == 500:
        # The seed's 500 carried the driver's own words; dmitems' 422 names the field.
        assert "Python int too large" in expected.json()["detail"]


def test_openapi_keeps_the_seed_operation_ids(seed: Side, tmp_path: Any) -> None:
    from dmitems.api import create_app
    from dmitems.config import load_settings

    ours = create_app(load_settings(flags={"database_url": f"sqlite+aiosqlite:///{tmp_path}/o.db"}))
    document = ours.openapi()
    seed_document = seed.client.get("/openapi.json").json()

    def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(path, method): operation for path, methods in doc["paths"].items()
                for method, operation in methods.items()}

    seed_operations, our_operations = operations(seed_document), operations(document)
    for key, operation in seed_operations.items():
        assert our_operations[key]["operationId"] == operation["operationId"], key
        if key[0].startswith("/items/"):
            assert our_operations[key]["tags"] == ["compat"], key
    update = document["components"]["schemas"]["CompatItemUpdate"]["properties"]
    for name in ("name", "description", "price"):
        assert {"type": "null"} in update[name]["anyOf"]  # null is documented, and accepted
    delete = our_operations[("/items/delete_item/{item_id}", "delete")]
    assert "200" in delete["summary"] and "200" in delete["responses"]
    assert "204" not in delete["responses"]


# -- the article's client script, against `dmitems serve` --------------------------------


@pytest.mark.slow  # a real server per case
@pytest.mark.parametrize("mode", ["async", "sync"])
def test_the_articles_client_script(database_url: str, mode: str) -> None:
    """The article's async_test() and sync_test(), with the answers checked: 100 concurrent
    and 100 sequential create_item calls, all 2xx, every row stored."""
    import requests

    process, base = start(database_url, "--mode", mode)
    try:
        async def async_test() -> list[Any]:
            # The script's httpx.AsyncClient(), with a timeout this loaded test host can keep
            # (httpx's default is 5 s; the point here is the answers, not the speed).
            async with httpx.AsyncClient(timeout=60) as client:
                tasks = [client.post(f"{base}/items/create_item",
                                     json={"name": f"测试商品{i}", "price": i * 10})
                         for i in range(100)]
                return list(await asyncio.gather(*tasks))

        concurrent = asyncio.run(async_test())
        sequential = [requests.post(f"{base}/items/create_item",
                                    json={"name": f"测试商品{i}", "price": i * 10}, timeout=60)
                      for i in range(100)]
        assert {response.status_code for response in concurrent} == {201}
        assert {response.status_code for response in sequential} == {201}
        created = [response.json() for response in concurrent] + [r.json() for r in sequential]
        assert len({item["id"] for item in created}) == 200
    finally:
        code, stderr = stop(process)
    assert code == 0 and "Traceback" not in stderr, stderr
    rows = stored_rows(database_url)
    expected = sorted([(f"测试商品{i}", None, i * 10) for i in range(100)] * 2)
    assert sorted(rows) == expected
