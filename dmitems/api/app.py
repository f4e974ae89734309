"""The application factory: ``create_app(settings)``.

Nothing is built at import time.  ``create_app`` wires routes, middleware and
error handlers; the engines are built in the lifespan and disposed of at
shutdown.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from dmitems import __version__
from dmitems.api import seed_errors
from dmitems.api.dependencies import store_kind, store_parameter
from dmitems.api.middleware import RequestContextMiddleware
from dmitems.api.problems import for_error, log, problem_response, request_id_of
from dmitems.api.routers import compat, health, items
from dmitems.api.routing import Route
from dmitems.api.security import api_key_guard
from dmitems.errors import DmitemsError

if TYPE_CHECKING:
    from dmitems.config import Settings
    from dmitems.db import Database

DESCRIPTION = """\
Items over SQLAlchemy (async or sync engine) on DM8, SQLite or PostgreSQL.
Errors are `application/problem+json` (RFC 9457). Single-item responses carry
the version as `ETag`; send it back in `If-Match` to update or delete safely.
"""


def create_app(settings: Settings, *, owns_loop: bool = False) -> FastAPI:
    """The REST API for ``settings`` (mode, database, key, limits).

    ``owns_loop``: the app runs in dmitems' own server (``dmitems serve``), which may
    size its event loop's default executor (see :mod:`dmitems.db.loops`).
    """
    from dmitems.db import Database

    database = Database(settings)  # parses the URL only; engines come in the lifespan
    mode = settings.server_mode
    app = FastAPI(
        title="dmitems",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(database, mode, owns_loop),
        # FastAPI's built-in OpenTelemetry hooks cost time on every request; off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.database = database

    stores: dict[tuple[str, bool], Any] = {}  # one per kind of connection (see store_kind)
    guard = api_key_guard(settings.api_key.get_secret_value()) if _has_key(settings) else None

    def store_for(route: Route) -> Any:
        flags = {"transaction": route.transaction, "writes": route.writes, "bulk": route.bulk}
        kind = store_kind(database.backend, **flags)
        if kind not in stores:
            stores[kind] = store_parameter(database, mode, **flags)
        return stores[kind]

    def guards_for(route: Route) -> list[Any]:
        protected = route.writes or settings.server_protect_reads
        return [guard] if guard is not None and protected else []

    # Neither family catches the other's paths: REST ids are digits only ({item_id:int}),
    # so /items/read_items is never an id, and a wrong method gets 405, not a 422.
    for table in (compat.table, items.table):
        app.include_router(table.router(mode, store_for, guards_for))
    app.include_router(health.health_router(database, mode))

    _install_error_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        plain_errors=compat.owns,
        max_body_bytes=settings.server_max_body_bytes,
        access_log=settings.server_access_log,
    )
    if settings.server_cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.server_cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-Request-ID"],
            expose_headers=["ETag", "Location", "X-Request-ID"],
        )
    return app


def _has_key(settings: Settings) -> bool:
    return settings.api_key is not None and bool(settings.api_key.get_secret_value())


def _lifespan(database: Database, mode: str, owns_loop: bool) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = database.settings
        if owns_loop:
            from dmitems.db.loops import own

            own()
        try:
            if mode == "sync":
                database.sync_engine()
                _size_thread_pool(settings.pool_capacity)
            else:
                await database.async_engine()
                if database.backend.name == "dm" and settings.dm_warm_pool:
                    seconds = await database.warm_up()
                    log.info("warmed %d DM connections in %.2f s",
                             settings.database_pool_size, seconds)
        except DmitemsError as error:
            # Serve anyway: /health reports 503 and requests get problem responses.
            log.warning("database not ready at startup: %s", database.redact(error.message))
        try:
            yield
        finally:
            await database.dispose()

    return lifespan


def _size_thread_pool(pool_capacity: int) -> None:
    """Sync mode: enough worker threads to use every pooled connection (anyio's default is 40)."""
    import anyio.to_thread

    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, pool_capacity + 8)


def _install_error_handlers(app: FastAPI) -> None:
    """Problem details everywhere, except on the seed's paths (``compat.owns``), which
    answer with FastAPI's default bodies (:mod:`dmitems.api.seed_errors`)."""

    async def dmitems_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, DmitemsError)
        if compat.owns(request.scope["path"]):
            return seed_errors.for_error(error, request_id_of(request.scope))
        return for_error(error, request_id_of(request.scope))

    async def invalid_request(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        if compat.owns(request.scope["path"]):
            return seed_errors.for_validation(error.errors())
        problems = [_field_problem(detail) for detail in error.errors()]
        return problem_response(
            422,
            "; ".join(f"{p['field']}: {p['detail']}" for p in problems[:5]),
            title="Invalid input",
            request_id=request_id_of(request.scope),
            errors=problems,
        )

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = _allowed_methods(app, request.scope)
        if compat.owns(request.scope["path"]):
            return seed_errors.plain_response(error.status_code, error.detail, headers)
        detail = error.detail if isinstance(error.detail, str) else None
        return problem_response(
            error.status_code,
            detail or "",
            request_id=request_id_of(request.scope),
            headers=headers,
        )

    app.add_exception_handler(DmitemsError, dmitems_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)


def _field_problem(detail: Any) -> dict[str, str]:
    """One entry of a 422 problem's ``errors``: the field path without "body", and the reason."""
    location = [str(part) for part in detail.get("loc", ())]
    if location and location[0] == "body":
        location = location[1:]
    if detail.get("type") == "json_invalid":
        # FastAPI puts the character offset where a field would be: it is no field.
        offset = f" at character {location[0]}" if location else ""
        return {"field": "body", "detail": f"JSON decode error{offset}"}
    # "Value error, " is pydantic's prefix for dmitems' own checks: dropped, as the CLI
    # and the batch routes drop it.
    reason = str(detail.get("msg", "invalid")).removeprefix("Value error, ")
    return {"field": ".".join(location) or "body", "detail": reason}


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(app: FastAPI, scope: Any) -> str:
    """Every method some route serves on this request's path.  The router's own 405 names
    the methods of the first route whose path matched (only GET for /items/1)."""
    from starlette.routing import Match

    allowed = []
    for method in _METHODS:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in app.routes):
            allowed.append(method)
    return ", ".join(allowed)
