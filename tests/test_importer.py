"""The bulk path (validate_records, insert_rows), the streaming readers and import_records.

Runs on a real SQLite file and a real PostgreSQL server (see conftest).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dmitems.errors import InvalidInput
from dmitems.formats import ArrayParser, open_source
from dmitems.importer import (
    ImportAborted,
    ImportSpec,
    Progress,
    import_records,
    insert_rows,
    validate_columns,
    validate_records,
)
from dmitems.models import items
from dmitems.schemas import ItemCreate, ItemRead, describe_errors

CASES = [
    {"name": "机械键盘", "price": 199},
    {"name": "  trimmed  ", "price": "42", "description": "d"},
    {"name": "", "price": 1},
    {"name": "x" * 256, "price": 1},
    {"name": "ok", "price": -1},
    {"name": "ok", "price": 1.5},
    {"name": "ok", "price": "12.0"},
    {"name": "ok", "price": True},
    {"name": "ok", "price": "abc"},
    {"name": "ok", "price": 2**31},
    {"name": "ok", "price": 1, "description": "d" * 501},
    {"name": "ok", "price": 1, "colour": "red"},
    {"price": 1},
    {"name": "ok"},
    {"name": None, "price": 1},
    "not a mapping",
    {"name": "ok", "price": 0, "description": None},
]


def test_validate_records_agrees_with_itemcreate() -> None:
    rows, problems = validate_records(CASES)
    expected_rows = []
    expected_problems = []
    for index, case in enumerate(CASES):
        try:
            expected_rows.append(ItemCreate.model_validate(case).model_dump())
        except Exception as error:  # pydantic.ValidationError
            for where, reason in describe_errors(error):  # type: ignore[arg-type]
                expected_problems.append((index, "record" if where == "item" else where, reason))
    assert rows == expected_rows
    assert [(i, where) for i, where, _ in problems] == [(i, w) for i, w, _ in expected_problems]
    for (_, _, reason), (_, _, model_reason) in zip(problems, expected_problems):
        # Same reason; for a non-mapping the model adds "or instance of ItemCreate".
        assert model_reason.startswith(reason)
    assert {index for index, _, _ in problems} == {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
    assert rows[1] == {"name": "trimmed", "description": "d", "price": 42}


# What a CSV row can be: only the known columns, name and price always present.
CSV_CASES = [
    {"name": "机械键盘", "price": 199},
    {"name": "  trimmed  ", "price": "42", "description": "d"},
    {"name": "", "price": "1", "description": None},
    {"name": "x" * 256, "price": "-1", "description": "d" * 501},
    {"name": "ok", "price": "12.0"},
    {"name": "ok", "price": " 7 "},
    {"name": "ok", "price": "abc", "description": ""},
    {"name": "ok", "price": 2**31},
    {"name": "   ", "price": 0},
    {"name": "商" * 255, "price": 2**31 - 1, "description": "描" * 500},
]


def test_validate_columns_agrees_with_validate_records() -> None:
    values, problems = validate_columns(CSV_CASES)
    rows, expected = validate_records(CSV_CASES)
    assert problems == expected  # same records, fields, reasons and order
    assert values == [(row["name"], row["description"], row["price"]) for row in rows]
    assert {index for index, _, _ in problems} == {2, 3, 4, 6, 7, 8}
    assert values[1] == ("trimmed", "d", 42)
    assert validate_columns([]) == ([], [])
    assert validate_columns(CSV_CASES[:2]) == ([("机械键盘", None, 199), ("trimmed", "d", 42)], [])


def test_validate_records_all_valid_and_empty() -> None:
    assert validate_records([]) == ([], [])
    rows, problems = validate_records([{"name": "a", "price": "7"}])
    assert problems == [] and rows == [{"name": "a", "description": None, "price": 7}]


async def _count(database) -> int:
    async with database.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(items))).scalar_one())


async def _rows(database) -> list[tuple]:
    async with database.connect() as connection:
        result = await connection.execute(
            select(items.c.name, items.c.description, items.c.price).order_by(items.c.id)
        )
        return [tuple(row) for row in result]


ROWS = [
    {"name": "机械键盘", "description": "87 键", "price": 199},
    {"name": "mouse", "description": None, "price": 0},
    {"name": "引号\"逗号,换行\n", "description": "emoji 🎉", "price": 2_147_483_647},
]


@pytest.mark.parametrize("method", ["auto", "insert", "copy"])
async def test_insert_rows_in_the_callers_transaction(database, method: str) -> None:
    if method == "copy" and database.backend.name != "postgresql":
        with pytest.raises(InvalidInput, match="needs PostgreSQL"):
            async with database.begin() as connection:
                await insert_rows(connection, database.backend, ROWS, method=method)
        return
    async with database.begin() as connection:
        assert await insert_rows(connection, database.backend, ROWS, method=method) == 3
    assert await _rows(database) == [tuple(row.values()) for row in ROWS]

    # Rolled back with the caller's transaction: nothing stays (COPY included).
    async with database.connect() as connection:
        transaction = await connection.begin()
        assert await insert_rows(connection, database.backend, ROWS, method=method) == 3
        await transaction.rollback()
    assert await _count(database) == 3


async def test_insert_rows_returning(database) -> None:
    async with database.begin() as connection:
        created = await insert_rows(connection, database.backend, ROWS, returning=True)
    assert isinstance(created, list) and all(isinstance(item, ItemRead) for item in created)
    assert [(i.name, i.description, i.price) for i in created] == [tuple(r.values()) for r in ROWS]
    assert len({item.id for item in created}) == 3 and all(i.version == 1 for i in created)
    async with database.begin() as connection:
        assert await insert_rows(connection, database.backend, [], returning=True) == []
        assert await insert_rows(connection, database.backend, []) == 0


def test_insert_method_is_checked(tmp_path: Path) -> None:
    source = open_source(_write_jsonl(tmp_path / "in.jsonl", []), None)
    with pytest.raises(InvalidInput, match="unknown insert method"):
        ImportSpec(source, method="fast")
    with pytest.raises(InvalidInput, match="--rejects"):
        ImportSpec(source, skip_invalid=True)
    source.close()


# -- the streaming JSON array parser --------------------------------------------


def _parse(text: str) -> list:
    return list(ArrayParser(io.StringIO(text), "t.json"))


def test_array_parser_matches_json_across_read_boundaries() -> None:
    # Elements much larger and much smaller than one read, numbers and strings cut
    # at arbitrary places by the 64 KiB pieces.
    elements = []
    for i in range(30_000):
        elements.append({"name": f"商品{i}", "price": i * 7919, "description": None})
        if i % 5000 == 0:
            elements.append({"name": "x" * 300_000, "price": 1, "description": "\\\"escaped\\u00e9"})
    text = json.dumps(elements, ensure_ascii=bool(len(elements) % 2), indent=1)
    assert _parse(text) == elements
    assert _parse("[]") == [] and _parse("  [ ]\n") == [] and _parse("") == []
    assert _parse("[1, 2.5, true, null, \"s\"]") == [1, 2.5, True, None, "s"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[\n {"name": "a", "price": 1},\n {"name": "b" "price": 2}\n]', "line 3, column 15"),
        ('[\n {"name": "a", "price": 1}\n {"name": "b"}\n]', "line 3, column 2"),
        ('[{"name": "a", "price": 1},', "line 1, column 28"),
        ('{"name": "a"}', "line 1, column 1"),
        ('[{"name": "a"}] trailing', "line 1, column 17"),
        ('[{"name": "unterminated]', "line 1, column 11"),
    ],
)
def test_array_parser_reports_the_position(text: str, where: str) -> None:
    with pytest.raises(InvalidInput, match="malformed JSON at " + where):
        _parse(text)


def test_array_parser_position_far_into_a_large_file() -> None:
    good = ",\n".join(json.dumps({"name": f"n{i}", "price": i}) for i in range(20_000))
    text = "[\n" + good + ",\n{\"name\": \"bad\", \"price\": }\n]"
    with pytest.raises(InvalidInput) as caught:
        _parse(text)
    lines = text.splitlines()
    bad_line = next(n for n, line in enumerate(lines, 1) if '"bad"' in line)
    column = lines[bad_line - 1].index("}") + 1
    offset = text.rindex("}")
    assert f"line {bad_line}, column {column} (character {offset})" in str(caught.value)


# -- import_records ---------------------------------------------------------------


def _write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


async def test_import_reports_progress_by_bytes(database, tmp_path: Path) -> None:
    records = [{"name": f"商品 {i}", "price": i} for i in range(2_500)]
    path = _write_jsonl(tmp_path / "in.jsonl", records)
    seen: list[Progress] = []
    spec = ImportSpec(open_source(path, None), batch_size=1000)
    summary = await import_records(database, spec, seen.append)
    assert (summary.read, summary.inserted, summary.committed, summary.rejected) == (2500, 2500, 2500, 0)
    assert [p.read for p in seen] == [1000, 2000, 2500, 2500]  # the last after the commit
    assert [p.inserted for p in seen] == [1000, 2000, 2500, 2500]
    assert [p.committed for p in seen] == [0, 0, 0, 2500]
    assert seen[-1].bytes_read == seen[-1].bytes_total == path.stat().st_size
    assert seen[0].bytes_read <= seen[1].bytes_read <= seen[2].bytes_read
    assert await _count(database) == 2500


async def test_atomic_import_reads_everything_and_writes_nothing(database, tmp_path: Path) -> None:
    records = [{"name": f"n{i}", "price": i} for i in range(3000)]
    for bad in (5, 1500, 2999):
        records[bad] = {"name": f"n{bad}", "price": -bad}
    path = _write_jsonl(tmp_path / "in.jsonl", records)
    with pytest.raises(ImportAborted) as caught:
        await import_records(database, ImportSpec(open_source(path, None), batch_size=1000))
    summary = caught.value.summary
    assert caught.value.exit_code == 2 and "nothing was written" in str(caught.value)
    assert summary.read == 3000 and summary.rejected == 3 and summary.committed == 0
    assert [where for where, _, _ in summary.problems] == ["line 6", "line 1501", "line 3000"]
    assert await _count(database) == 0


async def test_commit_every_counts_what_stays(database, tmp_path: Path) -> None:
    records = [{"name": f"n{i}", "price": i} for i in range(2500)]
    path = _write_jsonl(tmp_path / "in.jsonl", records)
    spec = ImportSpec(open_source(path, None), batch_size=400, commit_every=1000)
    summary = await import_records(database, spec)
    assert summary.batch_size == 400
    assert summary.committed == summary.inserted == 2500
    assert await _count(database) == 2500


# -- the sync twin ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", "insert"])
async def test_insert_rows_sync_inserts_as_the_async_path_does(database, method: str) -> None:
    """The sync API's batch routes insert through the same plan (COPY on PostgreSQL)."""
    from dmitems.importer import insert_rows_sync
    from dmitems.importer.bulk import insert_plan

    try:
        with database.sync_begin() as connection:
            how, _ = insert_plan(connection.dialect, database.backend, method)
            expected = {"sqlite": "plain", "postgresql": "copy" if method == "auto" else "core"}
            assert how == expected[database.backend.name]  # psycopg's pyformat takes no tuples
            assert insert_rows_sync(connection, database.backend, ROWS, method=method) == 3
            created = insert_rows_sync(connection, database.backend, ROWS[:1], returning=True)
            assert [(item.name, item.price) for item in created] == [("机械键盘", 199)]
        assert await _rows(database) == [tuple(r.values()) for r in ROWS + ROWS[:1]]
        with pytest.raises(RuntimeError), database.sync_begin() as connection:
            insert_rows_sync(connection, database.backend, ROWS, method=method)
            raise RuntimeError("roll back")
        assert await _count(database) == 4  # COPY included: rolled back with the transaction
    finally:
        database.sync_dispose()


# -- durable counts and --skip-rows --------------------------------------------------


async def test_progress_counts_committed_rows(database, tmp_path: Path) -> None:
    records = [{"name": f"n{i}", "price": i} for i in range(2500)]
    path = _write_jsonl(tmp_path / "in.jsonl", records)
    seen: list[Progress] = []
    spec = ImportSpec(open_source(path, None), batch_size=500, commit_every=1000)
    await import_records(database, spec, seen.append)
    assert [p.inserted for p in seen] == [500, 1000, 1500, 2000, 2500, 2500]
    # Reported after each chunk and right after each commit: only what is durable.
    assert [p.committed for p in seen] == [0, 1000, 1000, 2000, 2000, 2500]
    assert [p.resume_skip_rows for p in seen] == [0, 1000, 1000, 2000, 2000, 2500]


async def test_skip_rows_resumes_where_the_count_says(database, tmp_path: Path) -> None:
    records = [{"name": f"n{i}", "price": i} for i in range(1000)]
    records[100] = {"name": "", "price": 1}  # refused into the rejects file, still counted
    path = _write_jsonl(tmp_path / "in.jsonl", records)
    spec = ImportSpec(open_source(path, None), batch_size=300, skip_rows=50, skip_invalid=True,
                      rejects=tmp_path / "rejects.jsonl")
    summary = await import_records(database, spec)
    assert (summary.skip_rows, summary.read, summary.committed) == (50, 950, 949)
    assert summary.resume_skip_rows == 1000
    assert [row[0] for row in await _rows(database)] == [
        f"n{i}" for i in range(50, 1000) if i != 100
    ]
    rejected = json.loads((tmp_path / "rejects.jsonl").read_text())
    assert rejected["line"] == 101  # positions stay those of the whole file

    with pytest.raises(ImportAborted) as caught:
        await import_records(database, ImportSpec(open_source(path, None), skip_rows=1001))
    assert caught.value.exit_code == 2
    assert "--skip-rows 1001, but" in str(caught.value) and "holds only 1000 records" in str(caught.value)
