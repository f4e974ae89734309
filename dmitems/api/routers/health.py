"""``/health`` (asks the database, answers within 2 s) and ``/livez`` (never touches it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from dmitems.api.dependencies import store_dependency
from dmitems.api.problems import (
    PROBLEM_JSON,
    PROBLEM_SCHEMA,
    RETRY_AFTER_SECONDS,
    log,
    problem_response,
    request_id_of,
)
from dmitems.api.routing import json_response
from dmitems.errors import DmitemsError, SchemaMismatch, SchemaMissing

# The probe gets this long; the answer (200 or 503) leaves well inside 2 s.
PROBE_SECONDS = 1.5


class Health(BaseModel):
    status: str
    database: str
    timestamp: datetime


class Live(BaseModel):
    status: str


def _probe(database: Any, mode: str) -> Callable[[], Awaitable[Any]]:
    """One cheap query through the same per-request store the routes get."""
    open_store = store_dependency(database, mode, transaction=False)
    if mode == "sync":
        sync_store = contextlib.contextmanager(open_store)

        def query() -> Any:
            with sync_store() as store:
                return store.list(0, 1)

        return lambda: asyncio.to_thread(query)
    async_store = contextlib.asynccontextmanager(open_store)

    async def probe() -> Any:
        async with async_store() as store:
            return await store.list(0, 1)

    return probe


def _schema_problem(error: SchemaMissing, request_id: str | None, now: str) -> Response:
    """Connected, but the table is missing or in another shape: no retry will help."""
    mismatch = isinstance(error, SchemaMismatch)
    return problem_response(
        503,
        "Connected to the database, but the items table "
        + ("is not in the shape dmitems needs; run `dmitems db upgrade`."
           if mismatch else "does not exist; run `dmitems init-db`."),
        title=error.title,
        request_id=request_id,
        database="schema_mismatch" if mismatch else "schema_missing",
        timestamp=now,
    )


def health_router(database: Any, mode: str) -> APIRouter:
    router = APIRouter(tags=["health"])
    probe = _probe(database, mode)

    @router.get(
        "/health",
        response_model=Health,
        name="health_check",  # the seed's name: its operation id, health_check_health_get
        responses={503: {"description": "Database unreachable, or reachable but the items "
                         "table is missing or not in dmitems' shape (problem+json)",
                         "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}},
    )
    async def health(request: Request) -> Response:
        """Is the database reachable, with the table in shape? 200 or 503, within 2 s."""
        request_id = request_id_of(request.scope)
        now = datetime.now(timezone.utc).isoformat()
        try:
            await asyncio.wait_for(probe(), PROBE_SECONDS)
        except Exception as error:  # whatever went wrong, the answer is "unhealthy"
            reason = error.message if isinstance(error, DmitemsError) else type(error).__name__
            log.warning("request %s: health check failed: %s", request_id, reason)
            if isinstance(error, SchemaMissing):
                return _schema_problem(error, request_id, now)
            return problem_response(
                503,
                "The database is unreachable or did not answer in time.",
                title="Database unavailable",
                request_id=request_id,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                database="unreachable",
                timestamp=now,
            )
        return json_response({"status": "healthy", "database": "connected", "timestamp": now})

    @router.get("/livez", response_model=Live)
    async def livez() -> Response:
        """The process is up (never touches the database)."""
        return json_response({"status": "alive"})

    return router
