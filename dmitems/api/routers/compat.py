"""The seed article's paths, kept exactly, over the same operations as the REST routes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import Request
from starlette.responses import Response

from dmitems.api.dependencies import Store
from dmitems.api.routers import items as rest
from dmitems.api.routers.items import BATCH_SCHEMA, BatchBody, Limit, Skip
from dmitems.api.routing import RouteTable, json_response
from dmitems.schemas import ItemRead

table = RouteTable(prefix="/items", tags=["compat"])

TRANSACTION_EXAMPLE = (
    {"name": "商品1", "description": None, "price": 100},
    {"name": "商品2", "description": None, "price": 200},
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def deleted(_: None, parameters: dict[str, Any]) -> Response:
    return json_response(
        {"message": "商品删除成功", "item_id": parameters["item_id"], "timestamp": _now()}
    )


def transaction_done(created: list[dict[str, Any]], parameters: dict[str, Any]) -> Response:
    return json_response({"message": "事务执行成功", "items": created}, 201)


table.route("POST", "/create_item", present=rest.created, status_code=201,
            response_model=ItemRead, writes=True, errors=(413, 422, 503), name="create_item")(rest.add_item)


@table.route("GET", "/read_items", present=rest.item_list, response_model=list[ItemRead],
             errors=(422, 503))
def read_items(store: Store, skip: Skip = 0, limit: Limit = 100) -> Any:
    """A page of items as a bare list (no total)."""
    return store.list(skip, limit)


table.route("GET", "/read_item/{item_id}", present=rest.item, response_model=ItemRead,
            errors=(404, 422, 503), name="read_item")(rest.get_item)


table.route("PUT", "/update_item/{item_id}", present=rest.item, response_model=ItemRead,
            writes=True, errors=(404, 412, 413, 422, 503), name="update_item")(rest.patch_item)


table.route("DELETE", "/delete_item/{item_id}", present=deleted, writes=True,
            errors=(404, 412, 422, 503), name="delete_item")(rest.remove_item)


@table.route("POST", "/batch_create", present=rest.created_list, status_code=201,
             response_model=list[ItemRead], writes=True, transaction=True, bulk=True,
             errors=(413, 422, 503), openapi_extra=BATCH_SCHEMA)
def batch_create(store: Store, request: Request, records: BatchBody) -> Any:
    """Create up to batch_max items in one transaction and return them."""
    return store.insert_batch(rest.batch_rows(request, records), returning=True)


@table.route("POST", "/transaction_example", present=transaction_done, status_code=201,
             writes=True, transaction=True, bulk=True, errors=(503,))
def transaction_example(store: Store) -> Any:
    """Create 商品1 (100) and 商品2 (200) in one transaction."""
    return store.insert_batch(list(TRANSACTION_EXAMPLE), returning=True)
