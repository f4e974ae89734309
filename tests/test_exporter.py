"""export_items pages through the table by keyset; RecordWriter and atomic_output."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from dmitems.exporter import count_matching, export_items
from dmitems.formats import RecordWriter, atomic_output
from dmitems.importer import insert_rows


async def _fill(database, count: int) -> None:
    rows = [
        {"name": f"键盘 {i}" if i % 3 == 0 else f"item {i}", "description": None, "price": i}
        for i in range(count)
    ]
    async with database.begin() as connection:
        await insert_rows(connection, database.backend, rows)


async def test_export_pages_through_everything_in_id_order(database) -> None:
    await _fill(database, 1050)
    stream = io.StringIO()
    writer = RecordWriter(stream, "jsonl")
    seen: list[int] = []
    written = await export_items(database, writer, page_size=100, on_progress=seen.append)
    writer.close()
    assert written == 1050
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["price"] for r in records] == list(range(1050))
    assert set(records[0]) == {"name", "description", "price"}
    assert seen == list(range(100, 1001, 100)) + [1050]


async def test_export_filter_and_limit_across_pages(database) -> None:
    await _fill(database, 1000)
    assert await count_matching(database, "键盘") == 334
    stream = io.StringIO()
    writer = RecordWriter(stream, "csv")
    written = await export_items(database, writer, name_contains="键盘", limit=250, page_size=60)
    assert written == 250
    lines = stream.getvalue().splitlines()
    assert lines[0] == "name,description,price" and len(lines) == 251
    assert lines[1] == "键盘 0,,0" and lines[-1] == "键盘 747,,747"


def test_record_writer_formats() -> None:
    record = {"name": "引号\"逗号,", "description": None, "price": 5, "id": 9}
    for fmt, expected in [
        ("jsonl", '{"name":"引号\\"逗号,","description":null,"price":5}\n'),
        ("json", '[\n{"name":"引号\\"逗号,","description":null,"price":5}\n]\n'),
        ("csv", 'name,description,price\r\n"引号""逗号,",,5\r\n'),
    ]:
        stream = io.StringIO()
        writer = RecordWriter(stream, fmt)
        writer.write(record)
        writer.close()
        assert stream.getvalue() == expected
    empty = io.StringIO()
    RecordWriter(empty, "json").close()
    assert json.loads(empty.getvalue()) == []


def test_atomic_output_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as stream:
            stream.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with atomic_output(target, "utf-8-sig") as stream:
        stream.write("新")
    assert target.read_bytes() == "新".encode("utf-8-sig")
    with atomic_output(target, "gbk") as stream:
        stream.write("新")
    assert target.read_bytes() == "新".encode("gbk")
