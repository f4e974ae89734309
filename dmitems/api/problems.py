"""Problem details (RFC 9457): the one shape every HTTP error takes.

A problem body never carries an exception message, SQL or a stack trace.
Messages written by dmitems itself (not found, version conflict, validation)
are shown; anything that may hold driver text (integrity, database
unavailable, value too long, unexpected errors) gets a fixed sentence, and the
full message goes to the server log with the request id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson
from starlette.responses import Response

from dmitems.errors import (
    DatabaseUnavailable,
    DmitemsError,
    IntegrityViolation,
    InvalidInput,
    NotFound,
    ValidationFailed,
    VersionConflict,
)

PROBLEM_JSON = "application/problem+json"
REQUEST_ID_KEY = "dmitems.request_id"
RETRY_AFTER_SECONDS = 5
log = logging.getLogger("dmitems.api")


class TooLarge(InvalidInput):
    """A request asks for more than the server accepts at once."""

    http_status = 413
    title = "Content too large"


# Errors whose message dmitems wrote itself and which hold no driver text.
_OWN_MESSAGES = (NotFound, VersionConflict, ValidationFailed, TooLarge)
_FIXED_DETAILS: dict[type[DmitemsError], str] = {
    DatabaseUnavailable: "The database is unavailable; try again later.",
    IntegrityViolation: "The database rejected the change (a constraint was violated).",
}
_GENERIC_DETAIL = "The request could not be completed."


def problem_type(status: int) -> str:
    """One scheme for every status, server errors included: clients switch on it."""
    return f"urn:dmitems:problem:{status}"


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """A ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": problem_type(status),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    return Response(orjson.dumps(body), status, headers, media_type=PROBLEM_JSON)


def request_id_of(scope: Any) -> str | None:
    return scope.get(REQUEST_ID_KEY)  # type: ignore[no-any-return]


def public_detail(error: DmitemsError) -> str:
    """What a client may read about ``error``."""
    if isinstance(error, _OWN_MESSAGES):
        return error.message
    for kind, detail in _FIXED_DETAILS.items():
        if isinstance(error, kind):
            return detail
    return _GENERIC_DETAIL


def field_problems(problems: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"field": location, "detail": reason} for location, reason in problems]


@dataclass
class Described:
    """What a client is told about an error, in whichever body shape its route uses."""

    status: int
    detail: str
    title: str | None
    headers: dict[str, str]
    extensions: dict[str, Any]


def describe(error: DmitemsError, request_id: str | None) -> Described:
    """The public status, detail, headers and extensions for ``error``; logs what the
    client is not told (with the request id)."""
    status = error.http_status
    headers: dict[str, str] = {}
    extensions: dict[str, Any] = {}
    if isinstance(error, ValidationFailed):
        extensions["errors"] = field_problems(error.problems)
    elif isinstance(error, VersionConflict) and error.current_version is not None:
        extensions["current_version"] = error.current_version
        headers["ETag"] = f'"{error.current_version}"'
    elif isinstance(error, DatabaseUnavailable):
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    detail = public_detail(error)
    if detail != error.message:
        level = logging.ERROR if status >= 500 else logging.WARNING
        log.log(level, "request %s: %s: %s", request_id, type(error).__name__, error.message)
    title = error.title if status != 500 else None
    return Described(status, detail, title, headers, extensions)


def for_error(error: DmitemsError, request_id: str | None) -> Response:
    """The problem response for a dmitems error."""
    told = describe(error, request_id)
    return problem_response(
        told.status,
        told.detail,
        title=told.title,
        request_id=request_id,
        headers=told.headers,
        **told.extensions,
    )


# -- OpenAPI ------------------------------------------------------------------

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "current_version": {"type": "integer", "description": "412: the item's version now"},
        "errors": {
            "type": "array",
            "description": "422: one entry per problem, with the field path",
            "items": {
                "type": "object",
                "required": ["field", "detail"],
                "properties": {"field": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
    },
}

_DESCRIPTIONS = {
    401: "Missing or wrong API key (`Authorization: Bearer <key>`)",
    404: "No such item",
    409: "Rejected by a database constraint",
    412: "If-Match names a version the item no longer has",
    413: "Body or batch too large",
    422: "Invalid input; `errors` lists each problem with its field path",
    500: "Unexpected error (generic body; details in the server log)",
    503: "Database unavailable (with Retry-After)",
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses."""
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
        }
        for status in (*statuses, 500)
    }
