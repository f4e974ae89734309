"""The sync and async executors run the same operations with the same results."""

from __future__ import annotations

from typing import Any

import pytest

from dmitems.errors import NotFound, VersionConflict
from dmitems.repository import AsyncItems, SyncItems
from dmitems.schemas import ItemCreate


class SyncDriver:
    """Run one operation per transaction on the sync engine."""

    def __init__(self, database: Any) -> None:
        self.database = database

    async def __call__(self, name: str, *args: Any) -> Any:
        with self.database.sync_begin() as connection:
            return getattr(SyncItems(connection, self.database.backend), name)(*args)


class AsyncDriver:
    def __init__(self, database: Any) -> None:
        self.database = database

    async def __call__(self, name: str, *args: Any) -> Any:
        async with self.database.begin() as connection:
            return await getattr(AsyncItems(connection, self.database.backend), name)(*args)


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest, database: Any) -> Any:
    return SyncDriver(database) if request.param == "sync" else AsyncDriver(database)


def _strip(item: Any) -> dict[str, Any]:
    return item.model_dump(exclude={"id", "created_at", "updated_at"})


async def test_parity_scenario(run: Any) -> None:
    """The same script on both executors; every result is checked against what was sent."""
    created = await run("create", ItemCreate(name="机械键盘", price=199, description="87 键"))
    assert _strip(created) == {"name": "机械键盘", "description": "87 键", "price": 199, "version": 1}
    assert created.id > 0 and created.created_at == created.updated_at

    fetched = await run("get", created.id)
    assert fetched == created

    updated = await run("update", created.id, {"price": 179}, 1)
    assert updated.version == 2 and updated.price == 179 and updated.name == "机械键盘"
    assert updated.updated_at >= created.updated_at and updated.created_at == created.created_at

    with pytest.raises(VersionConflict) as conflict:
        await run("update", created.id, {"price": 1}, 1)
    assert conflict.value.current_version == 2
    assert (await run("get", created.id)).price == 179

    replaced = await run("replace", created.id, ItemCreate(name="键盘", price=1), None)
    assert _strip(replaced) == {"name": "键盘", "description": None, "price": 1, "version": 3}

    with pytest.raises(NotFound):
        await run("update", 10**9, {"price": 1}, None)
    with pytest.raises(NotFound):
        await run("get", 10**9)
    with pytest.raises(VersionConflict):
        await run("delete", created.id, 1)
    await run("delete", created.id, 3)
    with pytest.raises(NotFound):
        await run("delete", created.id, None)


async def test_bulk_paths_and_paging(run: Any) -> None:
    rows = [{"name": f"item {n:03}", "description": None, "price": n} for n in range(25)]
    assert await run("bulk_insert", rows) == 25
    assert await run("bulk_insert", []) == 0
    created = await run("bulk_create", [{"name": "a", "description": "x", "price": 1},
                                        {"name": "b", "description": None, "price": 2}])
    assert [(c.name, c.price, c.version) for c in created] == [("a", 1, 1), ("b", 2, 1)]
    assert created[0].id < created[1].id

    assert await run("count") == 27
    page = await run("page", 5, 10)
    assert page.total == 27 and [i.price for i in page.items] == list(range(5, 15))
    whole = await run("page", 0, 100)
    assert whole.total == 27 and len(whole.items) == 27
    untotalled = await run("page", 0, 3, False)
    assert untotalled.total is None and len(untotalled.items) == 3
    assert await run("count", "item 01") == 10  # item 010 … item 019
    assert await run("count", "%") == 0  # LIKE wildcards are escaped

    first = await run("after", 0, 10)
    rest = await run("after", first[-1].id, 100)
    assert len(first) == 10 and len(rest) == 17 and rest[0].id > first[-1].id

    assert await run("delete_named_like", "item ") == 25
    assert await run("count") == 2


async def test_postgresql_batches_are_one_unnest_statement(database: Any) -> None:
    """On PostgreSQL a batch create is one INSERT … SELECT FROM unnest, lined up with the input."""
    from sqlalchemy import event

    engine = await database.async_engine()
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: sent.append(statement))
    rows = [{"name": f"批量 {n}", "description": None if n % 3 else "d", "price": 40 - n}
            for n in range(40)]
    async with database.begin() as connection:
        created = await AsyncItems(connection, database.backend).bulk_create(rows)
    assert [(c.name, c.description, c.price) for c in created] == [
        (row["name"], row["description"], row["price"]) for row in rows
    ]
    inserts = [statement for statement in sent if statement.startswith("INSERT")]
    if database.backend.name == "postgresql":
        assert len(inserts) == 1 and "unnest" in inserts[0]
    else:
        assert all("unnest" not in statement for statement in inserts)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_dict_executors_return_what_the_model_executors_do(database: Any, mode: str) -> None:
    """SyncItemDicts / AsyncItemDicts: the same rows as dicts, which validate to the same models."""
    from dmitems.repository import AsyncItemDicts, SyncItemDicts
    from dmitems.schemas import ItemRead

    async with database.begin() as connection:
        await AsyncItems(connection, database.backend).bulk_create(
            [{"name": f"项 {n}", "description": None, "price": n} for n in range(3)]
        )
    if mode == "sync":
        with database.sync_begin() as connection:
            models, dicts = SyncItems(connection, database.backend), SyncItemDicts(
                connection, database.backend)
            pairs = [(models.page(0, 2), dicts.page(0, 2)), (models.get(2), dicts.get(2))]
    else:
        async with database.begin() as connection:
            amodels, adicts = AsyncItems(connection, database.backend), AsyncItemDicts(
                connection, database.backend)
            pairs = [(await amodels.page(0, 2), await adicts.page(0, 2)),
                     (await amodels.get(2), await adicts.get(2))]
    (page, page_dict), (item, item_dict) = pairs
    assert isinstance(item_dict, dict) and ItemRead.model_validate(item_dict) == item
    assert page_dict["total"] == page.total == 3 and page_dict["skip"] == 0
    assert [ItemRead.model_validate(row) for row in page_dict["items"]] == page.items
