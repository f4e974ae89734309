"""The seed article's routes, as a drop-in for clients of the original service.

Its contract, on these paths only: its status codes and body shapes (``version``
added), its input rules (lax pydantic: ``2.0`` is 2; unknown fields ignored; in an
update a missing or ``null`` field stays unchanged and ``{}`` returns the item
unchanged), FastAPI's error bodies (:mod:`dmitems.api.seed_errors`) and FastAPI's
default operation ids, so generated clients keep their method names.

Where the seed was wrong, these routes stay right; each case is one an existing
client cannot depend on:

* ids and ``skip`` beyond 64 bits, prices beyond the 32-bit column: the seed
  failed inside the database (500 with the driver's text, or a row its own DM
  table cannot hold); here a 422 names the field;
* a blank name, or ``true`` as a price: the seed stored them; here a 422;
* a batch over ``batch_max``: the seed took any size; here a 413;
* the database down: the seed answered 500 with its error text; here 503 with
  ``Retry-After`` and a fixed sentence.

``update_item`` and ``delete_item`` also take dmitems' ``If-Match`` (412 on a stale
version), which the seed lacked and dmitems documented before: a client that sends
it keeps its lost-update protection; one that does not sees no difference.

The REST routes (:mod:`dmitems.api.routers.items`) keep dmitems' own contract.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.responses import Response

from dmitems.api import seed_errors
from dmitems.api.dependencies import Store
from dmitems.api.problems import TooLarge
from dmitems.api.routers import items as rest
from dmitems.api.routers.items import BIGINT_MAX, BatchBody, IfMatch, ItemId, Limit
from dmitems.api.routing import RouteTable, json_response
from dmitems.schemas import (
    CompatItemCreate,
    CompatItemRow,
    CompatItemUpdate,
    ItemCreate,
    ItemResponse,
)

table = RouteTable(prefix="/items", tags=["compat"], operation_ids="fastapi",
                   documented=seed_errors.documented)

# The seed declared update and delete ids as plain ints: 0 or -1 is a missing item (404).
AnyId = Annotated[int, Path(ge=-BIGINT_MAX - 1, le=BIGINT_MAX, description="商品ID")]
# The seed's skip had no upper bound; a page past the end is [].
Skip = Annotated[int, Query(ge=0, le=BIGINT_MAX, description="跳过记录数")]
BATCH_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array",
                           "items": {"$ref": "#/components/schemas/CompatItemCreate"}}
            }
        },
    }
}
TRANSACTION_EXAMPLE = (
    {"name": "商品1", "description": None, "price": 100},
    {"name": "商品2", "description": None, "price": 200},
)
_ROWS: TypeAdapter[list[Any]] = TypeAdapter(list[CompatItemRow])


class CompatDeleted(BaseModel):
    message: str
    item_id: int
    timestamp: str


class CompatMessage(BaseModel):
    message: str


def owns(path: str) -> bool:
    """Whether ``path`` is one of the seed's (including a seed path missing its id)."""
    prefix, _, rest_of_path = path.partition(table.prefix + "/")
    return not prefix and rest_of_path.split("/", 1)[0] in _NAMES


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def deleted(_: None, parameters: dict[str, Any]) -> Response:
    return json_response(
        {"message": "商品删除成功", "item_id": parameters["item_id"], "timestamp": _now()}
    )


def transaction_done(_: Any, parameters: dict[str, Any]) -> Response:
    return json_response({"message": "事务执行成功"})


def seed_rows(request: Request, records: list[Any]) -> list[dict[str, Any]]:
    """A batch checked as the seed checked it (FastAPI's 422 body); over the cap → 413."""
    cap = request.app.state.settings.server_batch_max
    if len(records) > cap:
        raise TooLarge(f"{len(records)} items in one batch; at most {cap} are accepted")
    try:
        rows = _ROWS.validate_python(records)
    except ValidationError as error:
        raise RequestValidationError(
            [{**detail, "loc": ("body", *detail["loc"])}
             for detail in error.errors(include_url=False)]
        ) from None
    for row in rows:
        row.setdefault("description", None)
    return rows


@table.route("POST", "/create_item", present=rest.created, status_code=201,
             response_model=ItemResponse, writes=True, errors=(413, 503))
def create_item(store: Store, item: CompatItemCreate) -> Any:
    """Create an item; 201 with the item."""
    rest.refuse_nul(store, [item])
    return store.create(ItemCreate.model_construct(**item.model_dump()))


@table.route("GET", "/read_items", present=rest.item_list, response_model=list[ItemResponse],
             errors=(503,))
def read_items(store: Store, skip: Skip = 0, limit: Limit = 100) -> Any:
    """A page of items in id order, as a bare list."""
    return store.list(skip, limit)


@table.route("GET", "/read_item/{item_id}", present=rest.item, response_model=ItemResponse,
             errors=(404, 503))
def read_item(store: Store, item_id: ItemId) -> Any:
    """One item; 404 if there is none."""
    return store.get(item_id)


@table.route("PUT", "/update_item/{item_id}", present=rest.item, response_model=ItemResponse,
             writes=True, errors=(404, 412, 413, 503))
def update_item(
    store: Store, item_id: AnyId, item: CompatItemUpdate, if_match: IfMatch = None
) -> Any:
    """Update the fields given; a missing or null field stays unchanged; If-Match optional."""
    changes = item.changes()
    if not changes:
        # Nothing is written, so no update can be lost: an If-Match has nothing to guard.
        return store.get(item_id)
    rest.refuse_nul(store, [changes])
    return store.update(item_id, changes, rest.expected_version(if_match))


@table.route("DELETE", "/delete_item/{item_id}", present=deleted, response_model=CompatDeleted,
             writes=True, errors=(404, 412, 503))
def delete_item(store: Store, item_id: AnyId, if_match: IfMatch = None) -> Any:
    """Delete an item; 200 with a message, the id and a timestamp; If-Match optional."""
    return store.delete(item_id, rest.expected_version(if_match))


@table.route("POST", "/batch_create", present=rest.item_list, response_model=list[ItemResponse],
             writes=True, transaction=True, bulk=True, errors=(413, 503),
             openapi_extra=BATCH_SCHEMA)
def batch_create_items(store: Store, request: Request, records: BatchBody) -> Any:
    """Create up to batch_max items in one transaction; 200 with them, in input order."""
    rows = seed_rows(request, records)
    rest.refuse_nul(store, rows, numbered=True)
    return store.insert_batch(rows, returning=True)


@table.route("POST", "/transaction_example", present=transaction_done, response_model=CompatMessage,
             writes=True, transaction=True, bulk=True, errors=(503,))
def transaction_example(store: Store) -> Any:
    """Create 商品1 (100) and 商品2 (200) in one transaction."""
    return store.insert_batch(list(TRANSACTION_EXAMPLE), returning=True)


_NAMES = frozenset(route.path.split("/")[1] for route in table.routes)
