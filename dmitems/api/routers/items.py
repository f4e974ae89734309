"""REST routes for items, and the presenters the compat routes share."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import Body, Header, Path, Query, Request
from starlette.responses import Response

from dmitems.api.dependencies import Store
from dmitems.api.problems import TooLarge
from dmitems.api.routing import RouteTable, json_response
from dmitems.errors import ValidationFailed
from dmitems.schemas import ItemCreate, ItemPage, ItemRead, ItemUpdate

BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
# Matches no stored version (versions start at 1): an If-Match that names no
# version still goes through the atomic statement, which then reports 404 or 412.
NO_VERSION = 0
_ETAG = re.compile(r'"([0-9]{1,10})"')

ItemId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="The item's id")]
Skip = Annotated[int, Query(ge=0, le=INT_MAX, description="Items to skip")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page (1-1000)")]
IfMatch = Annotated[
    str | None,
    Header(description='Apply only if the item is at this version: the ETag, e.g. "3"'),
]
BatchBody = Annotated[list[Any], Body(description="Items to create, at most batch_max")]
BATCH_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/ItemCreate"}}
            }
        },
    }
}

table = RouteTable(prefix="/items", tags=["items"])


# -- shared pieces --------------------------------------------------------------


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header asks for; None when absent or ``*``."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ETAG.fullmatch(if_match.strip())
    if match is None or int(match.group(1)) > INT_MAX:
        return NO_VERSION
    return int(match.group(1))


# PostgreSQL's text cannot hold U+0000, and its error names no field: checked before
# the statement so that the 422 says which field.  (SQLite and DM store it.)
_NO_NUL_DIALECTS = frozenset({"postgresql"})
NUL_REASON = "PostgreSQL cannot store the NUL character (\\u0000) in text"


def refuse_nul(store: Store, rows: Sequence[Any], *, numbered: bool = False) -> None:
    """ValidationFailed naming each name or description that holds a NUL character, on
    databases that cannot store one.  ``rows``: one model or dict; ``numbered``: a batch
    (validated dicts, looked over in one join first: 56 µs for 1,000 rows)."""
    if store.connection.dialect.name not in _NO_NUL_DIALECTS:
        return
    if numbered:
        joined = "".join([row["name"] for row in rows] + [row["description"] or "" for row in rows])
        if "\x00" not in joined:
            return
    found = [
        (f"{index}.{key}" if numbered else key, NUL_REASON)
        for index, row in enumerate(rows)
        for key in ("name", "description")
        if "\x00" in _text(row, key)
    ]
    if found:
        raise ValidationFailed("; ".join(f"{where}: {why}" for where, why in found), found)


def _text(row: Any, key: str) -> str:
    value = row.get(key) if isinstance(row, Mapping) else getattr(row, key, None)
    return value if isinstance(value, str) else ""


def batch_rows(request: Request, records: list[Any]) -> list[dict[str, Any]]:
    """Validate a batch with the importer; over the cap → 413, any invalid item → 422."""
    from dmitems.importer import validate_records

    cap = request.app.state.settings.server_batch_max
    if len(records) > cap:
        raise TooLarge(f"{len(records)} items in one batch; at most {cap} are accepted")
    rows, problems = validate_records(records)
    if problems:
        listed = [(f"{index}.{path}" if path != "record" else str(index), reason)
                  for index, path, reason in problems]
        bad = sorted({index for index, _, _ in problems})
        raise ValidationFailed(
            f"{len(bad)} of {len(records)} items are invalid (indexes {bad[:20]}); nothing was written",
            listed,
        )
    return rows


# Presenters get the stores' plain results: dicts with ItemRead's fields (see
# dmitems.api.dependencies); json_response gives them ItemRead's JSON form.
Record = dict[str, Any]


def _etag(item: Record) -> dict[str, str]:
    return {"ETag": f'"{item["version"]}"'}


def item(item: Record, parameters: dict[str, Any]) -> Response:
    return json_response(item, 200, _etag(item))


def created(item: Record, parameters: dict[str, Any]) -> Response:
    headers = {**_etag(item), "Location": f"/items/{item['id']}"}
    return json_response(item, 201, headers)


def item_list(items: list[Record], parameters: dict[str, Any]) -> Response:
    return json_response(items)


def created_list(items: list[Record], parameters: dict[str, Any]) -> Response:
    return json_response(items, 201)


def page(page: Record, parameters: dict[str, Any]) -> Response:
    return json_response(page)


def no_content(_: None, parameters: dict[str, Any]) -> Response:
    return Response(status_code=204)


def count_created(count: int, parameters: dict[str, Any]) -> Response:
    return json_response({"created": count}, 201)


# -- routes ----------------------------------------------------------------------


@table.route("POST", "", present=created, status_code=201, response_model=ItemRead,
             writes=True, errors=(413, 422, 503))
def add_item(store: Store, item: ItemCreate) -> Any:
    """Create an item; 201 with its Location and ETag."""
    refuse_nul(store, [item])
    return store.create(item)


@table.route("GET", "", present=page, response_model=ItemPage, errors=(422, 503))
def list_items(store: Store, skip: Skip = 0, limit: Limit = 100, total: bool = True) -> Any:
    """A page of items in id order; `total=false` skips the count."""
    return store.page(skip, limit, with_total=total)


@table.route("POST", "/batch", present=count_created, status_code=201, writes=True,
             transaction=True, errors=(413, 422, 503), openapi_extra=BATCH_SCHEMA,
             response_model=dict[str, int])
def create_batch(store: Store, request: Request, records: BatchBody) -> Any:
    """Create up to batch_max items in one transaction; all or nothing."""
    rows = batch_rows(request, records)
    refuse_nul(store, rows, numbered=True)
    return store.insert_batch(rows, returning=False)


@table.route("GET", "/{item_id:int}", present=item, response_model=ItemRead, errors=(404, 422, 503))
def get_item(store: Store, item_id: ItemId) -> Any:
    """One item, with its version as ETag."""
    return store.get(item_id)


@table.route("PATCH", "/{item_id:int}", present=item, response_model=ItemRead, writes=True,
             errors=(404, 412, 413, 422, 503))
def patch_item(
    store: Store, item_id: ItemId, changes: ItemUpdate, if_match: IfMatch = None
) -> Any:
    """Change some fields; `null` clears description; If-Match for optimistic locking."""
    values = changes.changes()
    refuse_nul(store, [values])
    return store.update(item_id, values, expected_version(if_match))


@table.route("PUT", "/{item_id:int}", present=item, response_model=ItemRead, writes=True,
             errors=(404, 412, 413, 422, 503))
def replace_item(store: Store, item_id: ItemId, item: ItemCreate, if_match: IfMatch = None) -> Any:
    """Replace every field; If-Match for optimistic locking."""
    refuse_nul(store, [item])
    return store.replace(item_id, item, expected_version(if_match))


@table.route("DELETE", "/{item_id:int}", present=no_content, status_code=204, writes=True,
             errors=(404, 412, 422, 503))
def remove_item(store: Store, item_id: ItemId, if_match: IfMatch = None) -> Any:
    """Delete an item; 204."""
    return store.delete(item_id, expected_version(if_match))
