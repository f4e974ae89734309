"""The reference for benchmarks/api_bench.sh: a straightforward implementation of the seed's routes.

Written the way the seed article and most tutorials do it, on purpose:
an ORM session per request; create = add -> commit -> refresh; every page
runs a COUNT; one INFO log line per request (from an HTTP middleware);
batch = add each -> commit -> refresh each row.  Same table, same engine
pool settings as dmitems in the benchmark (NAIVE_POOL_SIZE, NAIVE_MAX_OVERFLOW;
default 20 + 10), FastAPI's default JSON responses.  It is not part of dmitems.

Run: NAIVE_DATABASE_URL=sqlite+aiosqlite:///x.db python benchmarks/naive_app.py PORT
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from typing import Optional

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from dmitems.models import items


class Base(DeclarativeBase):
    pass


class Item(Base):  # the seed's ORM model, mapped onto dmitems' table
    __table__ = items

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger("naive")

engine = create_async_engine(
    os.environ["NAIVE_DATABASE_URL"],
    pool_size=int(os.environ.get("NAIVE_POOL_SIZE", "20")),
    max_overflow=int(os.environ.get("NAIVE_MAX_OVERFLOW", "10")),
)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)
app = FastAPI()


class ItemIn(BaseModel):
    name: str
    description: Optional[str] = None
    price: int


class ItemOut(ItemIn):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    updated_at: datetime


async def get_db():
    async with SessionLocal() as session:
        yield session


@app.middleware("http")
async def log_requests(request: Request, call_next):
    response = await call_next(request)
    log.info("%s %s -> %s", request.method, request.url.path, response.status_code)
    return response


@app.post("/items/create_item", response_model=ItemOut, status_code=201)
async def create_item(item: ItemIn, db: AsyncSession = Depends(get_db)):
    row = Item(**item.model_dump())
    db.add(row)
    await db.commit()
    await db.refresh(row)
    return row


@app.get("/items/read_items", response_model=list[ItemOut])
async def read_items(skip: int = 0, limit: int = 100, db: AsyncSession = Depends(get_db)):
    # The total is computed and thrown away, as in code that paginates with a count.
    (await db.execute(select(func.count()).select_from(Item))).scalar_one()
    result = await db.execute(select(Item).order_by(Item.id).offset(skip).limit(limit))
    return result.scalars().all()


@app.get("/items/read_item/{item_id}", response_model=ItemOut)
async def read_item(item_id: int, db: AsyncSession = Depends(get_db)):
    row = await db.get(Item, item_id)
    if row is None:
        raise HTTPException(status_code=404, detail="商品不存在")
    return row


@app.post("/items/batch_create", response_model=list[ItemOut], status_code=201)
async def batch_create(items: list[ItemIn], db: AsyncSession = Depends(get_db)):
    rows = [Item(**item.model_dump()) for item in items]
    for row in rows:
        db.add(row)
    await db.commit()
    for row in rows:
        await db.refresh(row)
    return rows


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False)
