"""The seed article's service, as the article writes it: the reference for the contract suite.

Routes, schemas, status codes, the table and the error handling follow the article
(``/work/shared/seed/``, read past its interleaved line numbers) statement for
statement, on a SQLite file instead of DM8.  Changed only where the article's code
does not run as printed, each marked ``# not as printed``:

* ``read_item`` declares its path parameter with ``Query(..., ge=1)``, which FastAPI
  refuses for a path parameter: ``Path(..., ge=1)``, the same rule;
* ``func`` was never imported;
* ``async_transaction`` does not exist in SQLAlchemy: ``async with db.begin()``;
* ``.dict()`` is pydantic v1's name for ``model_dump()`` (same result, no warning);
* the background task's one-second "simulated" sleep is ``sleep(0)``: it runs after the
  response and changes nothing in it;
* no SQL echo and no INFO logging.

Route handlers carry no return annotation, as in the article: FastAPI would take one as
the response model.  It is a test fixture, not part of dmitems.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, List, Optional

from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import sessionmaker

# The article's model, shared with the migration tests so the two copies cannot drift.
from tests.seed_service import Base, Item


class ItemBase(BaseModel):
    name: str = Field(..., min_length=1, max_length=255, description="商品名称")
    description: Optional[str] = Field(None, max_length=500, description="商品描述")
    price: int = Field(..., ge=0, description="商品价格")


class ItemCreate(ItemBase):
    pass


class ItemUpdate(ItemBase):
    name: Optional[str] = Field(None, min_length=1, max_length=255)  # type: ignore[assignment]
    price: Optional[int] = Field(None, ge=0)  # type: ignore[assignment]


class ItemResponse(ItemBase):
    id: int
    created_at: Optional[str] = None
    updated_at: Optional[str] = None
    model_config = ConfigDict(from_attributes=True)


def create_seed_app(url: str) -> FastAPI:  # noqa: C901 - the article's routes, one after another
    """The article's app on ``url`` (e.g. ``sqlite+aiosqlite:///seed.db``)."""
    engine = create_async_engine(url, pool_size=20, max_overflow=10, pool_pre_ping=True)
    session_factory = sessionmaker(  # type: ignore[call-overload]
        autocommit=False, autoflush=False, bind=engine, class_=AsyncSession,
        expire_on_commit=False,
    )

    async def get_db() -> Any:
        async with session_factory() as session:
            try:
                yield session
            finally:
                await session.close()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        yield
        await engine.dispose()

    app = FastAPI(title="达梦异步API服务", version="1.0.0", lifespan=lifespan)

    @app.post("/items/create_item", response_model=ItemResponse,
              status_code=status.HTTP_201_CREATED, summary="创建商品")
    async def create_item(item: ItemCreate, db: AsyncSession = Depends(get_db)):
        try:
            db_item = Item(name=item.name, description=item.description, price=item.price)
            db.add(db_item)
            await db.commit()
            await db.refresh(db_item)
            return db_item
        except Exception as e:
            await db.rollback()
            raise HTTPException(status_code=500, detail=f"创建商品失败: {str(e)}")

    @app.get("/items/read_items", response_model=List[ItemResponse], summary="获取商品列表")
    async def read_items(
        skip: int = Query(0, ge=0, description="跳过记录数"),
        limit: int = Query(100, ge=1, le=1000, description="每页记录数"),
        db: AsyncSession = Depends(get_db),
    ):
        try:
            result = await db.execute(select(Item).order_by(Item.id).offset(skip).limit(limit))
            items = result.scalars().all()
            count_result = await db.execute(select(func.count()).select_from(Item))  # not as printed
            count_result.scalar()
            return items
        except Exception as e:
            raise HTTPException(status_code=500, detail=f"读取商品列表失败: {str(e)}")

    @app.get("/items/read_item/{item_id}", response_model=ItemResponse, summary="获取单个商品")
    async def read_item(
        item_id: int = Path(..., ge=1, description="商品ID"),  # not as printed (Query)
        db: AsyncSession = Depends(get_db),
    ):
        try:
            item = await db.get(Item, item_id)
            if item is None:
                raise HTTPException(status_code=404, detail="商品不存在")
            return item
        except HTTPException:
            raise
        except Exception as e:
            raise HTTPException(status_code=500, detail=f"读取商品失败: {str(e)}")

    @app.put("/items/update_item/{item_id}", response_model=ItemResponse, summary="更新商品")
    async def update_item(item_id: int, item: ItemUpdate, db: AsyncSession = Depends(get_db)):
        try:
            db_item = await db.get(Item, item_id)
            if db_item is None:
                raise HTTPException(status_code=404, detail="商品不存在")
            update_data = item.model_dump(exclude_unset=True)  # not as printed (.dict)
            for field, value in update_data.items():
                if value is not None:
                    setattr(db_item, field, value)
            db.add(db_item)
            await db.commit()
            await db.refresh(db_item)
            return db_item
        except HTTPException:
            raise
        except Exception as e:
            await db.rollback()
            raise HTTPException(status_code=500, detail=f"更新商品失败: {str(e)}")

    @app.delete("/items/delete_item/{item_id}", summary="删除商品")
    async def delete_item(item_id: int, db: AsyncSession = Depends(get_db)):
        try:
            db_item = await db.get(Item, item_id)
            if db_item is None:
                raise HTTPException(status_code=404, detail="商品不存在")
            await db.delete(db_item)
            await db.commit()
            return {"message": "商品删除成功", "item_id": item_id,
                    "timestamp": datetime.now().isoformat()}
        except HTTPException:
            raise
        except Exception as e:
            await db.rollback()
            raise HTTPException(status_code=500, detail=f"删除商品失败: {str(e)}")

    async def process_items_async(items: List[Item]) -> None:
        await asyncio.sleep(0)  # not as printed (1 s)

    @app.post("/items/batch_create", summary="批量创建商品")
    async def batch_create_items(
        items: List[ItemCreate], background_tasks: BackgroundTasks,
        db: AsyncSession = Depends(get_db),
    ):
        try:
            db_items = [Item(**item.model_dump()) for item in items]  # not as printed (.dict)
            db.add_all(db_items)
            await db.commit()
            for db_item in db_items:
                await db.refresh(db_item)
            background_tasks.add_task(process_items_async, db_items)
            return db_items
        except Exception as e:
            await db.rollback()
            raise HTTPException(status_code=500, detail=f"批量创建失败: {str(e)}")

    @app.post("/items/transaction_example")
    async def transaction_example(db: AsyncSession = Depends(get_db)):
        try:
            async with db.begin():  # not as printed (async_transaction)
                db.add(Item(name="商品1", price=100))
                db.add(Item(name="商品2", price=200))
            return {"message": "事务执行成功"}
        except Exception as e:
            raise HTTPException(status_code=500, detail=f"事务执行失败: {str(e)}")

    @app.get("/health")
    async def health_check(db: AsyncSession = Depends(get_db)):
        try:
            await db.execute(select(1))
            return {"status": "healthy", "database": "connected",
                    "timestamp": datetime.now().isoformat()}
        except Exception as e:
            raise HTTPException(status_code=503, detail=f"数据库连接失败: {str(e)}")

    return app
