"""Routing between the two families, and what each family's errors look like."""

from __future__ import annotations

from typing import Any

from tests.api.test_routes import assert_problem

JSON = "application/json"


def assert_plain(response: Any, status: int) -> Any:
    """A seed-route error: FastAPI's ``{"detail": ...}`` as application/json."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON
    body = response.json()
    assert set(body) == {"detail"}
    return body["detail"]


def test_neither_family_catches_the_others_paths(client: Any) -> None:
    # Seed paths: a wrong method is 405 with Allow, a seed path without its id is 404.
    for method, path, allowed in (("GET", "/items/create_item", "POST"),
                                  ("PATCH", "/items/read_items", "GET"),
                                  ("GET", "/items/update_item/1", "PUT"),
                                  ("POST", "/items/delete_item/1", "DELETE"),
                                  ("GET", "/items/batch_create", "POST")):
        response = client.request(method, path)
        assert assert_plain(response, 405) == "Method Not Allowed"
        assert response.headers["allow"] == allowed, path
    assert assert_plain(client.get("/items/read_item"), 404) == "Not Found"
    assert assert_plain(client.delete("/items/delete_item"), 404) == "Not Found"
    # REST paths: only digits are ids; anything else is no route (404), never a 422.
    for path in ("/items/abc", "/items/-1", "/items/1.5", "/items/read_itemz"):
        assert_problem(client.get(path), 404)
    assert_problem(client.get("/items/0"), 422)  # an id, out of range
    response = client.post("/items/5")
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, PUT, PATCH, DELETE"  # every method on the path
    response = client.delete("/items/batch")
    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


def test_seed_errors_are_fastapi_bodies(make_client: Any) -> None:
    client = make_client(server_batch_max=2, server_max_body_bytes=1024)
    item = client.post("/items/create_item", json={"name": "a", "price": 1}).json()
    assert assert_plain(client.get("/items/read_item/999999"), 404) == "商品不存在"
    assert assert_plain(client.put("/items/update_item/999999", json={}), 404) == "商品不存在"
    detail = assert_plain(client.put(f"/items/update_item/{item['id']}", json={"price": "x"}), 422)
    assert detail[0]["loc"] == ["body", "price"] and detail[0]["type"] == "int_parsing"
    over_cap = client.post("/items/batch_create", json=[{"name": "b", "price": 1}] * 3)
    assert "at most 2" in assert_plain(over_cap, 413)
    big = {"name": "b", "description": "d" * 500, "price": 1}
    too_big = client.post("/items/batch_create", json=[big] * 2)
    assert "larger than 1024 bytes" in assert_plain(too_big, 413)
    # The same on a REST route is a problem, with the same title as a batch over the cap.
    body = assert_problem(client.post("/items/batch", json=[big] * 2), 413)
    assert body["title"] == "Content too large"


def test_seed_update_null_and_empty_leave_fields_unchanged(client: Any) -> None:
    item = client.post("/items/create_item",
                       json={"name": "键盘", "description": "87 键", "price": 5}).json()
    url = f"/items/update_item/{item['id']}"
    unchanged = client.put(url, json={})
    assert unchanged.status_code == 200 and unchanged.json() == item  # no new version either
    kept = client.put(url, json={"name": None, "description": None, "price": 6}).json()
    assert (kept["name"], kept["description"], kept["price"]) == ("键盘", "87 键", 6)
    # The REST PATCH keeps its own rules: null clears the description, {} is refused.
    cleared = client.patch(f"/items/{item['id']}", json={"description": None}).json()
    assert cleared["description"] is None
    assert_problem(client.patch(f"/items/{item['id']}", json={}), 422)


def test_nul_in_text_names_its_field(client: Any, database_url: str) -> None:
    """PostgreSQL cannot store U+0000: a 422 that names the field, on every route that
    writes text.  SQLite stores it, byte for byte."""
    if database_url.startswith("sqlite"):
        created = client.post("/items", json={"name": "a\x00b", "price": 1})
        assert created.status_code == 201 and created.json()["name"] == "a\x00b"
        return
    body = assert_problem(client.post("/items", json={"name": "a\x00b", "price": 1}), 422)
    assert [error["field"] for error in body["errors"]] == ["name"]
    assert "NUL" in body["detail"]
    item = client.post("/items", json={"name": "ok", "price": 1}).json()
    body = assert_problem(client.patch(f"/items/{item['id']}", json={"description": "\x00"}), 422)
    assert [error["field"] for error in body["errors"]] == ["description"]
    body = assert_problem(client.put(f"/items/{item['id']}", json={"name": "\x00", "price": 1}),
                          422)
    assert [error["field"] for error in body["errors"]] == ["name"]
    batch = [{"name": "ok", "price": 1}, {"name": "x", "description": "d\x00", "price": 1}]
    body = assert_problem(client.post("/items/batch", json=batch), 422)
    assert [error["field"] for error in body["errors"]] == ["1.description"]
    detail = assert_plain(client.post("/items/batch_create", json=batch), 422)
    assert [error["loc"] for error in detail] == [["body", 1, "description"]]
    detail = assert_plain(client.post("/items/create_item", json={"name": "\x00", "price": 1}), 422)
    assert [error["loc"] for error in detail] == [["body", "name"]]
    detail = assert_plain(
        client.put(f"/items/update_item/{item['id']}", json={"description": "\x00"}), 422
    )
    assert [error["loc"] for error in detail] == [["body", "description"]]
    assert client.get("/items").json()["total"] == 1  # nothing else was written


def test_seed_update_and_delete_take_if_match(client: Any) -> None:
    """Not in the seed, documented by dmitems before: a client that sends If-Match keeps it."""
    item = client.post("/items/create_item", json={"name": "a", "price": 1}).json()
    url = f"/items/update_item/{item['id']}"
    updated = client.put(url, json={"price": 2}, headers={"If-Match": '"1"'})
    assert updated.status_code == 200 and updated.headers["etag"] == '"2"'
    stale = client.put(url, json={"price": 3}, headers={"If-Match": '"1"'})
    assert "version 2" in assert_plain(stale, 412) and stale.headers["etag"] == '"2"'
    assert client.put(url, json={}, headers={"If-Match": '"1"'}).json()["price"] == 2  # no write
    gone = f"/items/delete_item/{item['id']}"
    assert_plain(client.delete(gone, headers={"If-Match": '"1"'}), 412)
    assert client.delete(gone, headers={"If-Match": '"2"'}).status_code == 200
