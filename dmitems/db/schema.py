"""Creating and dropping the schema."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmitems.models import items, metadata

if TYPE_CHECKING:
    from dmitems.db.engines import Database


def _has_table(sync_connection: Any) -> bool:
    from sqlalchemy import inspect

    return bool(inspect(sync_connection).has_table(items.name))


async def create_schema(database: Database, *, drop: bool = False) -> dict[str, Any]:
    """Create the items table if missing (``drop`` first if asked).  Idempotent."""
    async with database.begin() as connection:
        existed = await connection.run_sync(_has_table)
        if drop and existed:
            await connection.run_sync(metadata.drop_all)
        created = drop or not existed
        details: dict[str, Any] = {}
        if created:
            details = await database.backend.prepare_schema(connection)
            await connection.run_sync(metadata.create_all)
    return {
        "url": database.target,
        "backend": database.name,
        "created": created,
        "dropped": drop and existed,
        **details,
    }


async def table_exists(database: Database) -> bool:
    async with database.connect() as connection:
        return bool(await connection.run_sync(_has_table))
