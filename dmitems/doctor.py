"""``dmitems doctor``: what is installed, whether the database answers, whether sizing
fits, and whether the items table has dmitems' shape.

Library logic only (no printing): :func:`diagnose` returns a plain dict that the
CLI renders as a rich report or JSON.  Every check is ``ok``, ``info``,
``warn`` or ``fail``; any ``fail`` makes the command exit non-zero.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from dmitems.errors import DmitemsError

if TYPE_CHECKING:
    from dmitems.config import Settings
    from dmitems.db import Database

OK, INFO, WARN, FAIL = "ok", "info", "warn", "fail"

# Python module -> distribution name, for version lookups.
DISTRIBUTIONS = {
    "aiosqlite": "aiosqlite",
    "asyncpg": "asyncpg",
    "psycopg": "psycopg",
    "dmPython": "dmPython",
    "dmAsync": "dmAsync",
    "dmSQLAlchemy": "dmSQLAlchemy",
    "async_timeout": "async-timeout",
}


@dataclass
class Check:
    name: str
    status: str
    detail: str


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions(database: Database) -> dict[str, Any]:
    import sqlalchemy

    backend = database.backend
    drivers: dict[str, str | None] = {}
    for module in dict.fromkeys(backend.async_modules + backend.sync_modules):
        if module == "sqlite3":
            import sqlite3

            drivers["sqlite3 (library)"] = sqlite3.sqlite_version
        else:
            drivers[module] = _version(DISTRIBUTIONS.get(module, module))
    return {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "sqlalchemy": sqlalchemy.__version__,
        "drivers": drivers,
    }


async def _server_facts(database: Database, connection: Any) -> dict[str, Any]:
    from sqlalchemy import text

    name = database.backend.name
    dialect = connection.sync_connection.dialect
    info = dialect.server_version_info or ()
    facts: dict[str, Any] = {"server_version": ".".join(str(part) for part in info) or None}
    if name == "sqlite":
        facts["journal_mode"] = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
    elif name == "postgresql":
        facts["max_connections"] = int(
            (await connection.execute(text("SHOW max_connections"))).scalar() or 0
        )
        facts["superuser_reserved_connections"] = int(
            (await connection.execute(text("SHOW superuser_reserved_connections"))).scalar() or 0
        )
    elif name == "dm":
        from dmitems.db.dm import read_server_settings

        facts.update(await read_server_settings(connection))
    return facts


async def connectivity(database: Database) -> tuple[dict[str, Any], DmitemsError | None]:
    """Open one connection (timed) and read the server facts that matter."""
    started = time.perf_counter()
    try:
        async with database.connect() as connection:
            connected = time.perf_counter() - started
            facts = await _server_facts(database, connection)
    except DmitemsError as error:
        return {"ok": False, "error": error.message}, error
    return {"ok": True, "connect_seconds": round(connected, 4), **facts}, None


def sizing(settings: Settings, backend: str, concurrency: int | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "concurrency": concurrency,
        "pool_size": settings.database_pool_size,
        "max_overflow": settings.database_max_overflow,
        "pool_capacity": settings.pool_capacity,
        "server_workers": settings.server_workers,
    }
    if backend == "dm":
        from dmitems.db import loops

        result["executor_threads"] = loops.executor_threads(settings)
        result["upstream_executor_threads"] = min(32, (os.cpu_count() or 1) + 4)
        result["executor_threads_source"] = (
            "dm.executor_threads" if settings.dm_executor_threads else "pool capacity + margin"
        )
    return result


def _connection_checks(
    settings: Settings, backend: str, connection: dict[str, Any], size: dict[str, Any]
) -> list[Check]:
    checks: list[Check] = []
    if connection["ok"]:
        checks.append(Check("connect", OK, f"connected in {connection['connect_seconds']:.3f} s"))
    else:
        checks.append(Check("connect", FAIL, connection["error"]))
    capacity = size["pool_capacity"]
    if backend == "postgresql" and connection.get("max_connections"):
        usable = connection["max_connections"] - connection.get("superuser_reserved_connections", 0)
        needed = capacity * settings.server_workers
        checks.append(
            Check(
                "max_connections",
                FAIL if needed > usable else OK,
                f"{settings.server_workers} worker(s) x pool capacity {capacity} = {needed} "
                f"connections; the server allows {usable}",
            )
        )
    if backend == "sqlite" and connection.get("journal_mode"):
        mode = str(connection["journal_mode"]).lower()
        checks.append(
            Check("journal_mode", OK if mode == "wal" else WARN, f"journal_mode={mode}")
        )
    return checks


def _pool_checks(size: dict[str, Any]) -> list[Check]:
    capacity = size["pool_capacity"]
    concurrency = size["concurrency"]
    if concurrency is None:
        return []
    if concurrency > capacity:
        return [
            Check(
                "pool",
                WARN,
                f"concurrency {concurrency} exceeds the pool capacity {capacity} "
                f"(pool_size {size['pool_size']} + max_overflow {size['max_overflow']}): "
                f"{concurrency - capacity} requests wait for a connection at any time",
            )
        ]
    return [Check("pool", OK, f"pool capacity {capacity} covers concurrency {concurrency}")]


def _dm_sizing_checks(
    settings: Settings, connection: dict[str, Any], size: dict[str, Any]
) -> list[Check]:
    checks: list[Check] = []
    threads, capacity = size["executor_threads"], size["pool_capacity"]
    if threads < capacity:
        checks.append(
            Check(
                "executor",
                FAIL,
                f"dm.executor_threads={threads} is below the pool capacity {capacity}: "
                "at most that many queries run at once",
            )
        )
    else:
        checks.append(
            Check(
                "executor",
                OK,
                f"{threads} worker threads for {capacity} pooled connections "
                f"(the upstream default would be {size['upstream_executor_threads']})",
            )
        )
    if settings.database_max_overflow:
        checks.append(
            Check(
                "overflow",
                WARN,
                f"max_overflow={settings.database_max_overflow}: every overflow connection "
                "costs a DM login and is closed again at check-in; prefer a fixed pool",
            )
        )
    if settings.dm_login_timeout < 10:
        checks.append(
            Check(
                "login_timeout",
                WARN,
                f"dm.login_timeout={settings.dm_login_timeout}: short login timeouts fail "
                "intermittently with -70019; 30 is the tested value",
            )
        )
    if connection.get("length_in_char") == 0:
        checks.append(
            Check(
                "length_in_char",
                INFO,
                "LENGTH_IN_CHAR=0: VARCHAR lengths count bytes; init-db sizes the string "
                "columns in bytes (4 per character) so names of 255 characters fit",
            )
        )
    return checks


def _defect_checks(defects: list[dict[str, Any]]) -> list[Check]:
    checks: list[Check] = []
    for defect in defects:
        if defect["status"] == "present":
            checks.append(Check(f"defect {defect['key']}", FAIL, defect["title"]))
        elif defect["status"] == "advice":
            checks.append(Check(f"defect {defect['key']}", INFO, defect["detail"]))
    return checks


def _schema_check(schema: dict[str, Any] | None) -> list[Check]:
    """ok, missing (a warning: init-db has not run yet), or the differences (a failure)."""
    if schema is None:
        return []
    table = schema["table"]
    if "error" in schema:
        return [Check("schema", WARN, f"could not read table {table}: {schema['error']}")]
    action = schema["action"]
    if action == "create":
        return [Check("schema", WARN, f"table {table} does not exist; run `dmitems init-db`")]
    if action in ("current", "stamp", "upgrade"):
        revision = schema["revision"] or "no version row yet (init-db stamps it)"
        return [Check("schema", OK, f"table {table} matches dmitems' model; revision {revision}")]
    fix = (
        "change those columns by hand"
        if action in ("blocked", "drifted")
        else "review `dmitems db upgrade --dry-run`, then run `dmitems db upgrade`"
    )
    differences = "; ".join(schema["differences"])
    return [Check("schema", FAIL, f"table {table} differs from dmitems' model: {differences}; {fix}")]


def _checks(
    settings: Settings, backend: str, report: dict[str, Any], defects: list[dict[str, Any]]
) -> list[Check]:
    connection, size = report["connectivity"], report["sizing"]
    checks = _connection_checks(settings, backend, connection, size)
    checks += _pool_checks(size)
    if backend == "dm":
        checks += _dm_sizing_checks(settings, connection, size)
        checks += _defect_checks(defects)
    checks += _schema_check(report.get("schema"))
    return checks


async def schema(database: Database) -> dict[str, Any]:
    """The migrations survey of the items table, as plain data for the report."""
    from dmitems.migrations import survey

    try:
        return (await survey(database)).as_dict()
    except DmitemsError as error:
        return {"table": database.table.name, "error": error.message}


async def diagnose(database: Database, concurrency: int | None = None) -> dict[str, Any]:
    """The whole report for ``database``; ``ok`` is False when any check failed."""
    settings = database.settings
    backend = database.backend.name
    report: dict[str, Any] = {
        "backend": backend,
        "url": database.target,
        "versions": versions(database),
    }
    connection, error = await connectivity(database)
    report["connectivity"] = connection
    report["sizing"] = sizing(settings, backend, concurrency)
    defects: list[dict[str, Any]] = []
    if backend == "dm":
        from dmitems.db import dm_defects

        defects = [defect.as_dict() for defect in dm_defects.report()]
        report["defects"] = defects
    if connection["ok"]:
        report["schema"] = await schema(database)
    checks = _checks(settings, backend, report, defects)
    report["checks"] = [asdict(check) for check in checks]
    report["ok"] = all(check.status != FAIL for check in checks)
    report["exit_code"] = 0 if report["ok"] else (error.exit_code if error else 3)
    return report
