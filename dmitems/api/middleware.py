"""The outermost layer of every request: request id, body limit, last-resort errors.

Pure ASGI (no ``BaseHTTPMiddleware``), so it adds no task or body copy per request.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dmitems.api.problems import REQUEST_ID_KEY, TooLarge, log, problem_response

_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
access_log = logging.getLogger("dmitems.api.access")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passes the limit; FastAPI re-raises HTTPExceptions."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def _declared_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length")
    return int(raw) if raw is not None and raw.isdigit() else None


class RequestContextMiddleware:
    """Gives each request an id (echoed as ``X-Request-ID``), enforces the body limit,
    turns any unexpected exception into a generic 500 problem (details logged with
    the id), and writes the access log when asked.  On paths where ``plain_errors``
    says so (the seed's), those two errors take FastAPI's ``{"detail": ...}`` body."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        access_log: bool,
        plain_errors: Callable[[str], bool] = lambda path: False,
    ) -> None:
        self.app = app
        self.plain_errors = plain_errors
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log
        # A random per-process prefix and a counter: unique across workers and restarts,
        # and far cheaper than a uuid4 (one getrandom call) per request.
        self._id_prefix = os.urandom(6).hex()
        self._id_counter = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        if incoming is not None and _SAFE_REQUEST_ID.fullmatch(incoming):
            request_id = incoming.decode()
        else:
            request_id = f"{self._id_prefix}-{next(self._id_counter):x}"
        scope[REQUEST_ID_KEY] = request_id
        id_header = (b"x-request-id", request_id.encode())
        started_at = time.perf_counter() if self.access_log else 0.0
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        limit = self.max_body_bytes
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            declared = _declared_length(scope)
            if declared is not None and declared > limit:
                await self._respond(scope, send_with_id, 413, BodyTooLarge(limit).detail)
            else:
                await self.app(scope, receive_limited, send_with_id)
        except BodyTooLarge as exc:
            if status:
                raise
            await self._respond(scope, send_with_id, 413, exc.detail)
        except Exception:
            log.exception("request %s: unexpected error on %s %s", request_id,
                          scope["method"], scope["path"])
            if status:
                raise
            await self._respond(scope, send_with_id, 500, "An unexpected error occurred.")
        finally:
            if self.access_log:
                elapsed_ms = (time.perf_counter() - started_at) * 1000
                access_log.info(
                    '%s "%s %s" %d %.1fms id=%s',
                    _client(scope), scope["method"], scope["path"], status, elapsed_ms, request_id,
                )

    async def _respond(self, scope: Scope, send: Send, status: int, detail: str) -> None:
        if self.plain_errors(scope["path"]):
            from dmitems.api.seed_errors import plain_response

            response = plain_response(status, detail)
        else:
            title = TooLarge.title if status == 413 else None  # the same title as a batch's 413
            response = problem_response(status, detail, title=title,
                                        request_id=scope.get(REQUEST_ID_KEY))
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _client(scope: Scope) -> Any:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"
