"""Export items as CSV, JSON or JSON Lines in keyset pages: constant memory at any table size.

Each page is one ``WHERE id > last ORDER BY id LIMIT n`` query through the
repository (``after``), so memory holds one page and no server-side cursor or
long-running statement is needed.  Only the writable fields (name,
description, price) are written, so an export imports straight back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dmitems.db import Database
    from dmitems.formats import RecordWriter

PAGE_SIZE = 5000


async def count_matching(database: Database, name_contains: str | None) -> int:
    """How many items an export with this filter would write (for progress)."""
    from dmitems.repository import AsyncItems

    async with database.connect() as connection:
        return await AsyncItems(connection, database.backend).count(name_contains)


async def export_items(
    database: Database,
    writer: RecordWriter,
    *,
    name_contains: str | None = None,
    limit: int | None = None,
    page_size: int = PAGE_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write matching items to ``writer`` in id order; return how many were written."""
    from dmitems.repository import AsyncItems

    written = 0
    last_id = 0
    async with database.connect() as connection:
        repository = AsyncItems(connection, database.backend)
        while limit is None or written < limit:
            size = page_size if limit is None else min(page_size, limit - written)
            rows = await repository.after(last_id, size, name_contains)
            for row in rows:
                writer.write(row._mapping)
            written += len(rows)
            if on_progress is not None:
                on_progress(written)
            if len(rows) < size:
                break
            last_id = rows[-1].id
    return written
