"""The API's fast item path gives exactly ItemRead's JSON.

The stores hand the presenters plain dicts built straight from the rows (no
pydantic per row).  These tests read the same rows through the library's
default path (``ItemRead`` models, as the CLI does) and check that every item
the API sends is byte for byte what dumping those models gives.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from dmitems.schemas import ItemRead


def models_by_id(client: Any) -> dict[int, ItemRead]:
    """Every stored item, read through the default (ItemRead) path in a fresh Database."""
    from dmitems.db import Database
    from dmitems.repository import AsyncItems

    async def read() -> list[ItemRead]:
        database = Database(client.app.state.settings)
        try:
            async with database.begin() as connection:
                return await AsyncItems(connection, database.backend).list(0, 1000)
        finally:
            await database.dispose()

    return {model.id: model for model in asyncio.run(read())}


def item_json(model: ItemRead) -> bytes:
    return orjson.dumps(model.model_dump())


def test_items_are_itemread_json_byte_for_byte(client: Any) -> None:
    created = client.post("/items/create_item", json={"name": "一", "price": 1})
    rest = client.post("/items", json={"name": "二", "description": "d", "price": 2})
    batch = client.post("/items/batch_create",
                        json=[{"name": f"b{i}", "price": i} for i in range(3)])
    example = client.post("/items/transaction_example")
    patched = client.patch(f"/items/{rest.json()['id']}", json={"description": None})
    assert created.status_code == rest.status_code == 201
    assert batch.status_code == example.status_code == 200  # the seed's statuses
    assert patched.status_code == 200

    models = models_by_id(client)
    assert len(models) == 7
    one = models[created.json()["id"]]
    assert created.content == item_json(one)
    assert patched.content == item_json(models[rest.json()["id"]])
    assert models[rest.json()["id"]].description is None and models[rest.json()["id"]].version == 2
    for model in models.values():
        for path in (f"/items/{model.id}", f"/items/read_item/{model.id}"):
            response = client.get(path)
            assert response.content == item_json(model), path
            assert response.headers["etag"] == f'"{model.version}"'
    ordered = [models[key] for key in sorted(models)]
    listed = b"[" + b",".join(item_json(model) for model in ordered) + b"]"
    assert client.get("/items/read_items", params={"limit": 100}).content == listed
    page = client.get("/items", params={"limit": 3}).json()
    assert page["items"] == [orjson.loads(item_json(model)) for model in ordered[:3]]
    assert page["total"] == 7
    assert batch.json() == [orjson.loads(item_json(models[item["id"]])) for item in batch.json()]
    assert example.json() == {"message": "事务执行成功"}


def test_timestamps_are_utc_in_itemread_form(client: Any) -> None:
    item = client.post("/items", json={"name": "t", "price": 0}).json()
    for field in ("created_at", "updated_at"):
        assert item[field].endswith("+00:00"), item[field]
    assert ItemRead.model_validate(item).created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
