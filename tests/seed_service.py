"""The seed service's ``Item`` model (``/work/shared/seed/``), as its users' tables have it.

Its columns are copied here verbatim (comments included) so the tests build the
table the way that service did, with ``Base.metadata.create_all``, and insert rows
the way its ``create_item`` route does (an ORM ``add``, ``commit``, ``refresh``).
Its timestamps are ``FetchedValue()``: the service never writes them, so whatever a
DBA's trigger or script put there is simulated with a plain UPDATE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, FetchedValue, Integer, String, create_engine, update
from sqlalchemy.orm import Session, declarative_base

Base = declarative_base()


class Item(Base):  # type: ignore[misc, valid-type]
    __tablename__ = "items"

    id = Column(Integer, primary_key=True, autoincrement=True, server_default=FetchedValue())
    name = Column(String(255), nullable=False, comment="商品名称")
    description = Column(String(500), comment="商品描述")
    price = Column(Integer, comment="商品价格")
    created_at = Column(String(20), server_default=FetchedValue(), comment="创建时间")
    updated_at = Column(String(20), server_default=FetchedValue(), comment="更新时间")


@dataclass(frozen=True)
class SeedRow:
    name: str
    description: str | None
    price: int | None
    created_at: str | None
    updated_at: str | None


# Text that parses (with T and with Z), NULL, text that does not, a NULL and a negative price.
ROWS = (
    SeedRow("widget", "the first one", 10, "2024-05-01 10:00:00", "2024-05-02T11:30:00"),
    SeedRow("gadget", None, None, None, None),
    SeedRow("doohickey", "odd dates", 0, "garbage", "2024-13-45 99:99:99"),
    SeedRow("gizmo", "negative", -5, "2024-05-03T08:00Z", None),
)


def sync_url(url: str) -> str:
    """The sync driver's URL for a dmitems test URL."""
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def create_seed_table(url: str, rows: tuple[SeedRow, ...] = ROWS) -> list[int]:
    """The service's table with ``rows`` in it; returns their ids."""
    engine = create_engine(sync_url(url))
    ids = []
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            for row in rows:
                item = Item(name=row.name, description=row.description, price=row.price)
                session.add(item)
                session.commit()
                session.refresh(item)
                ids.append(item.id)
                session.execute(
                    update(Item)
                    .where(Item.id == item.id)
                    .values(created_at=row.created_at, updated_at=row.updated_at)
                )
                session.commit()
    finally:
        engine.dispose()
    return ids


def read_rows(url: str) -> list[dict[str, Any]]:
    """Every row of the items table through dmitems' model, ordered by id."""
    from sqlalchemy import select

    from dmitems.models import items

    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            result = connection.execute(select(items).order_by(items.c.id))
            return [dict(row._mapping) for row in result]
    finally:
        engine.dispose()
