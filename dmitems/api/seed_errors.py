"""Errors on the seed's routes, in the bodies the seed service gave: FastAPI's defaults.

Clients of the original service parse ``{"detail": ...}`` served as
``application/json``: FastAPI's validation list for a 422, ``"商品不存在"`` for
a missing item, a string for anything else.  The statuses and headers are
dmitems' own (503 with ``Retry-After`` where the seed answered 500, 413 over
the batch cap), and texts that could hold driver output are the same fixed
sentences the problem details use (:func:`dmitems.api.problems.describe`).
The REST routes keep problem details.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.responses import Response

from dmitems.api.problems import describe
from dmitems.errors import DmitemsError, NotFound, ValidationFailed

JSON = "application/json"
NOT_FOUND = "商品不存在"


def plain_response(status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    """FastAPI's error body: ``{"detail": ...}`` as ``application/json``."""
    if status in (204, 304) or status < 200:
        return Response(status_code=status, headers=headers)
    return Response(orjson.dumps({"detail": detail}), status, headers, media_type=JSON)


def for_validation(errors: Sequence[Any]) -> Response:
    """422 with pydantic's errors, as FastAPI's default handler writes them."""
    from fastapi.encoders import jsonable_encoder

    return plain_response(422, jsonable_encoder(errors))


def _location(path: str) -> list[str | int]:
    """``"3.name"`` (item 3 of a batch) as FastAPI's ``["body", 3, "name"]``."""
    parts = [int(part) if part.isdigit() else part for part in path.split(".") if part]
    return ["body", *parts]


def for_error(error: DmitemsError, request_id: str | None) -> Response:
    """The seed-style response for a dmitems error (logged like a problem)."""
    if isinstance(error, NotFound):
        return plain_response(404, NOT_FOUND)
    told = describe(error, request_id)
    if told.status == 422:
        problems = error.problems if isinstance(error, ValidationFailed) else []
        listed = problems or [("", told.detail)]
        return plain_response(
            422, [{"type": "value_error", "loc": _location(where), "msg": why} for where, why in listed]
        )
    return plain_response(told.status, told.detail, told.headers)


# -- OpenAPI ------------------------------------------------------------------

_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Message",
    "required": ["detail"],
    "properties": {"detail": {"type": "string"}},
}
_DESCRIPTIONS = {
    401: "Missing or wrong API key (`Authorization: Bearer <key>`)",
    404: 'No such item: `{"detail": "商品不存在"}`',
    409: "Rejected by a database constraint",
    412: "If-Match names a version the item no longer has (its ETag is the current one)",
    413: "Batch over batch_max, or body too large",
    500: "Unexpected error (generic text; details in the server log)",
    503: "Database unavailable (with Retry-After)",
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these statuses on a seed route.  422 is left to FastAPI,
    which documents its own validation body."""
    return {
        status: {"description": _DESCRIPTIONS[status],
                 "content": {JSON: {"schema": _MESSAGE_SCHEMA}}}
        for status in (*statuses, 500)
        if status != 422
    }
