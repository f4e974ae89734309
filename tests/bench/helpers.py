"""Shared checks for the benchmark tests: tiny runs, real databases, the shipped JSON schema."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.cli_runner import Outcome, invoke

TINY = ("--concurrency", "4", "--duration", "1s", "--warmup", "0.2s", "--quiet")
POOL_ENV = {"DMITEMS_DATABASE_POOL_SIZE": "4"}
PERCENTILES = ("min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms", "max_ms")


def bench(url: str, *args: str, json_file: Path | None = None) -> tuple[Outcome, Any]:
    extra = ("--json", str(json_file)) if json_file is not None else ()
    outcome = invoke("--url", url, "bench", *args, *extra, env=POOL_ENV)
    document = json.loads(json_file.read_text()) if json_file and json_file.exists() else None
    return outcome, document


def validate(document: dict[str, Any]) -> None:
    import jsonschema

    from dmitems.bench.results import load_schema

    jsonschema.validate(document, load_schema())


def check_run(run: dict[str, Any]) -> None:
    """Operation counts add up to the total; percentiles never go down."""
    total = run["total"]
    operations = run["operations"].values()
    assert sum(stats["count"] for stats in operations) == total["count"]
    assert sum(stats["ok"] for stats in operations) == total["ok"]
    assert sum(stats["errors"] for stats in operations) == total["errors"]
    assert total["count"] == total["ok"] + total["errors"]
    assert sum(total["errors_by_kind"].values()) == total["errors"]
    for stats in (*operations, total):
        if stats["ok"]:
            values = [stats[key] for key in PERCENTILES]
            assert values == sorted(values), values
    assert sum(second["requests"] for second in run["timeseries"]) == total["ok"]


async def _rows(url: str, like: str | None = None) -> list[tuple[Any, ...]]:
    from sqlalchemy import select

    from dmitems.config import load_settings
    from dmitems.db import Database
    from dmitems.models import items

    database = Database(load_settings(flags={"database_url": url}))
    try:
        async with database.connect() as connection:
            query = select(items.c.id, items.c.name, items.c.price, items.c.version).order_by(
                items.c.id
            )
            if like is not None:
                query = query.where(items.c.name.startswith(like))
            return [tuple(row) for row in await connection.execute(query)]
    finally:
        await database.dispose()


def rows(url: str, like: str | None = None) -> list[tuple[Any, ...]]:
    return asyncio.run(_rows(url, like))


def add_user_rows(url: str) -> None:
    """Rows a user owns, one of them named like another benchmark run's rows."""
    for name in ("keep me", "dmitems-bench-00000000-0-1"):
        result = invoke("--url", url, "item", "add", "--name", name, "--price", "5")
        assert result.exit_code == 0, result.output


def init(url: str) -> None:
    result = invoke("--url", url, "init-db")
    assert result.exit_code == 0, result.output
