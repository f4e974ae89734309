"""API fixtures: the real app (lifespan running) on a fresh real database, in both modes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest



def pytest_configure(config: pytest.Config) -> None:
    # Starlette's TestClient asks for httpx2; httpx works and is what dmitems depends on.
    config.addinivalue_line("filterwarnings", "ignore:.*httpx2.*")


def fresh_schema(settings: Any) -> None:
    from dmitems.db import Database
    from dmitems.db.schema import create_schema

    async def create() -> None:
        database = Database(settings)
        try:
            await create_schema(database, drop=True)
        finally:
            await database.dispose()

    asyncio.run(create())


@pytest.fixture(params=["async", "sync"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_client(database_url: str, mode: str) -> Iterator[Callable[..., Any]]:
    """``make_client(**settings)``: a TestClient (as a context manager, so the lifespan
    runs) on a fresh items table, in this test's mode."""
    from fastapi.testclient import TestClient

    from dmitems.api import create_app
    from dmitems.config import load_settings

    opened: list[Any] = []

    def make(**flags: Any) -> Any:
        flags = {"database_url": database_url, "server_mode": mode,
                 "database_pool_size": 5, **flags}
        settings = load_settings(flags=flags)
        fresh_schema(settings)
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., Any]) -> Any:
    return make_client()
