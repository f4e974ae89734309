"""Every route and status code, on real SQLite and PostgreSQL, in async and sync mode."""

from __future__ import annotations

from typing import Any

PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["title"] and "type" in body
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def add(client: Any, name: str = "机械键盘", price: int = 199, **extra: Any) -> dict[str, Any]:
    response = client.post("/items", json={"name": name, "price": price, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def count(client: Any) -> int:
    return int(client.get("/items").json()["total"])


# -- REST ----------------------------------------------------------------------------


def test_create_returns_201_location_and_etag(client: Any) -> None:
    response = client.post("/items", json={"name": "  键盘 ", "description": "87 键", "price": 5})
    assert response.status_code == 201
    item = response.json()
    assert item["name"] == "键盘" and item["description"] == "87 键" and item["price"] == 5
    assert item["version"] == 1 and item["created_at"] and item["updated_at"]
    assert response.headers["location"] == f"/items/{item['id']}"
    assert response.headers["etag"] == '"1"'
    assert response.headers["content-type"] == "application/json"


def test_get_has_etag_and_missing_is_404(client: Any) -> None:
    item = add(client)
    response = client.get(f"/items/{item['id']}")
    assert response.status_code == 200 and response.json() == item
    assert response.headers["etag"] == '"1"'
    body = assert_problem(client.get(f"/items/{item['id'] + 1000}"), 404)
    assert str(item["id"] + 1000) in body["detail"]


def test_page_with_and_without_total(client: Any) -> None:
    ids = [add(client, name=f"item {i}", price=i)["id"] for i in range(5)]
    page = client.get("/items", params={"skip": 1, "limit": 2}).json()
    assert [item["id"] for item in page["items"]] == ids[1:3]
    assert page["total"] == 5 and page["skip"] == 1 and page["limit"] == 2
    page = client.get("/items", params={"limit": 2, "total": "false"}).json()
    assert page["total"] is None and len(page["items"]) == 2
    assert client.get("/items").json()["limit"] == 100


def test_limit_out_of_range_is_422_with_field(client: Any) -> None:
    for bad in (0, 1001):
        body = assert_problem(client.get("/items", params={"limit": bad}), 422)
        assert [error["field"] for error in body["errors"]] == ["query.limit"]


def test_invalid_body_lists_each_field(client: Any) -> None:
    response = client.post("/items", json={"name": "", "price": -1, "colour": "red"})
    body = assert_problem(response, 422)
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"name", "price", "colour"}
    assert count(client) == 0


def test_patch_with_if_match_and_stale_version(client: Any) -> None:
    item = add(client, description="old")
    url = f"/items/{item['id']}"
    response = client.patch(url, json={"price": 10}, headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2 and response.json()["price"] == 10
    assert response.headers["etag"] == '"2"'
    assert response.json()["description"] == "old"  # untouched by a partial update

    stale = assert_problem(client.patch(url, json={"price": 11}, headers={"If-Match": '"1"'}), 412)
    assert stale["current_version"] == 2
    assert client.get(url).json()["price"] == 10  # nothing applied

    cleared = client.patch(url, json={"description": None})
    assert cleared.status_code == 200 and cleared.json()["description"] is None


def test_if_match_that_names_no_version_is_412(client: Any) -> None:
    item = add(client)
    url = f"/items/{item['id']}"
    for header in ('W/"1"', "banana", '"99999999999"'):
        assert_problem(client.patch(url, json={"price": 1}, headers={"If-Match": header}), 412)
    assert client.patch(url, json={"price": 1}, headers={"If-Match": "*"}).status_code == 200


def test_patch_nothing_or_null_name_is_422(client: Any) -> None:
    item = add(client)
    assert_problem(client.patch(f"/items/{item['id']}", json={}), 422)
    body = assert_problem(client.patch(f"/items/{item['id']}", json={"name": None}), 422)
    assert body["errors"][0]["field"] == "name"


def test_put_replaces_every_field(client: Any) -> None:
    item = add(client, description="old")
    url = f"/items/{item['id']}"
    response = client.put(url, json={"name": "new", "price": 3}, headers={"If-Match": '"1"'})
    assert response.status_code == 200
    assert response.json()["description"] is None and response.json()["name"] == "new"
    assert_problem(client.put(url, json={"name": "x", "price": 3}, headers={"If-Match": '"1"'}), 412)
    assert_problem(client.put("/items/987654", json={"name": "x", "price": 3}), 404)


def test_delete_with_if_match(client: Any) -> None:
    item = add(client)
    url = f"/items/{item['id']}"
    assert_problem(client.delete(url, headers={"If-Match": '"7"'}), 412)
    response = client.delete(url, headers={"If-Match": '"1"'})
    assert response.status_code == 204 and response.content == b""
    assert_problem(client.get(url), 404)
    assert_problem(client.delete(url), 404)


def test_batch_creates_all_in_one_go(client: Any) -> None:
    records = [{"name": f"批量{i}", "price": i} for i in range(50)]
    response = client.post("/items/batch", json=records)
    assert response.status_code == 201, response.text
    assert response.json() == {"created": 50}
    assert count(client) == 50


def test_batch_with_an_invalid_item_writes_nothing(client: Any) -> None:
    records = [{"name": "ok", "price": 1}, {"name": "bad", "price": -5}, {"name": ""}, "text"]
    body = assert_problem(client.post("/items/batch", json=records), 422)
    fields = {error["field"] for error in body["errors"]}
    assert {"1.price", "2.name", "2.price", "3"} <= fields
    assert count(client) == 0


def test_batch_over_the_cap_is_413(make_client: Any) -> None:
    client = make_client(server_batch_max=3)
    records = [{"name": f"n{i}", "price": 1} for i in range(4)]
    body = assert_problem(client.post("/items/batch", json=records), 413)
    assert "at most 3" in body["detail"]
    assert body["title"] == "Content too large"
    assert count(client) == 0
    assert client.post("/items/batch", json=records[:3]).status_code == 201


def test_body_over_the_limit_is_413(make_client: Any) -> None:
    client = make_client(server_max_body_bytes=1024)
    big = {"name": "x", "description": "d" * 400, "price": 1}
    body = assert_problem(client.post("/items/batch", json=[big] * 5), 413)
    # The same title as a batch over the cap: one 413, one title.
    assert body["title"] == "Content too large"
    assert count(client) == 0


def test_unknown_route_404_and_wrong_method_405(client: Any) -> None:
    assert_problem(client.get("/nowhere"), 404)
    response = client.put("/livez")
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


# -- health ------------------------------------------------------------------------------


def test_health_and_livez(client: Any) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "healthy" and body["database"] == "connected" and body["timestamp"]
    assert client.get("/livez").json() == {"status": "alive"}


# -- request ids ------------------------------------------------------------------------


def test_request_id_is_echoed_or_generated(client: Any) -> None:
    assert client.get("/livez", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = client.get("/livez", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["x-request-id"] not in ("", "bad id\twith spaces")
    first = client.get("/livez").headers["x-request-id"]
    assert first != client.get("/livez").headers["x-request-id"]


# -- API key ----------------------------------------------------------------------------


def test_api_key_guards_writes(make_client: Any) -> None:
    client = make_client(api_key="s3cret-key")
    item = {"name": "x", "price": 1}
    body = assert_problem(client.post("/items", json=item), 401)
    assert "s3cret" not in str(body)
    assert client.post("/items", json=item).headers["www-authenticate"] == "Bearer"
    wrong = {"Authorization": "Bearer s3cret-kez"}
    assert_problem(client.post("/items", json=item, headers=wrong), 401)
    assert_problem(client.post("/items", json=item, headers={"Authorization": "s3cret-key"}), 401)
    right = {"Authorization": "Bearer s3cret-key"}
    created = client.post("/items", json=item, headers=right)
    assert created.status_code == 201
    assert_problem(client.delete(f"/items/{created.json()['id']}"), 401)
    seed = client.post("/items/transaction_example")  # a seed route: FastAPI's body
    assert seed.status_code == 401 and seed.json()["detail"].startswith("A valid API key")
    assert client.get("/items").status_code == 200  # reads stay open


def test_protect_reads(make_client: Any) -> None:
    client = make_client(api_key="k", server_protect_reads=True)
    assert_problem(client.get("/items"), 401)
    assert client.get("/items/read_items").status_code == 401
    assert client.get("/items", headers={"Authorization": "Bearer k"}).status_code == 200
    assert client.get("/livez").status_code == 200


def test_request_bodies_with_huge_integers_and_broken_json(client: Any) -> None:
    """Bodies are parsed by orjson: a 30-digit price is out of range, broken JSON (NaN too) is 422."""
    raw = b'[{"name": "x", "price": 123456789012345678901234567890}]'
    response = client.post("/items/batch", content=raw,
                           headers={"content-type": "application/json"})
    body = assert_problem(response, 422)
    assert body["errors"] == [{"field": "0.price",
                               "detail": "Input should be less than or equal to 2147483647"}]
    broken = client.post("/items", content=b'{"name": "x", "price": 1',
                         headers={"content-type": "application/json"})
    body = assert_problem(broken, 422)
    # The character offset is where the JSON broke, not a field.
    assert body["errors"] == [{"field": "body", "detail": "JSON decode error at character 24"}]
    assert body["detail"] == "body: JSON decode error at character 24"
    # NaN is not JSON: the standard library would accept it, orjson (what the API uses) does not.
    nan = client.post("/items/batch", content=b'[{"name": "x", "price": NaN}]',
                      headers={"content-type": "application/json"})
    assert "JSON decode error" in assert_problem(nan, 422)["detail"]
    # A single item reads the same reasons as a batch, without pydantic's "Value error, ".
    single = client.post("/items", content=b'{"name": "x", "price": 1e30}',
                         headers={"content-type": "application/json"})
    assert assert_problem(single, 422)["errors"] == [
        {"field": "price", "detail": "Input should be less than or equal to 2147483647"}
    ]
    assert count(client) == 0
