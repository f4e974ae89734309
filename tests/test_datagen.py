"""The test-data generator: deterministic, valid, and realistic."""

from __future__ import annotations

import json
import statistics

from dmitems.datagen import generate_items
from dmitems.importer import validate_records
from tests.cli_runner import invoke


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    first = list(generate_items(500, seed=3))
    assert first == list(generate_items(500, seed=3))
    assert first != list(generate_items(500, seed=4))
    # A prefix of a longer run is the shorter run.
    assert list(generate_items(100, seed=3)) == first[:100]


def test_pinned_first_rows() -> None:
    # Guards determinism across versions: only random.random() is used.
    rows = list(generate_items(2, seed=1))
    assert rows[0] == {"name": "绿联不锈钢空气炸锅 升级版", "description": None, "price": 899}
    assert rows[1]["name"] == "Acme Waterproof Gel Pen Family Pack"


def test_rows_are_valid_and_look_like_a_shop() -> None:
    rows = list(generate_items(20_000, seed=1))
    valid, problems = validate_records(rows)
    assert problems == [] and len(valid) == 20_000
    chinese = sum(any("\u4e00" <= ch <= "\u9fff" for ch in r["name"]) for r in rows)
    assert 0.55 < chinese / len(rows) < 0.65
    described = sum(r["description"] is not None for r in rows)
    assert 0.65 < described / len(rows) < 0.75
    prices = [r["price"] for r in rows]
    assert 80 < statistics.median(prices) < 250
    assert min(prices) == 0 and max(prices) > 5_000
    charm = sum(p % 10 == 9 for p in prices if p >= 10)
    assert charm / len(prices) > 0.5
    assert len({r["name"] for r in rows}) > 10_000


def test_generate_command_streams_to_stdout_and_files(tmp_path) -> None:
    out = invoke("item", "generate", "5", "--seed", "9")
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines == list(generate_items(5, seed=9))
    target = tmp_path / "items.csv"
    result = invoke("item", "generate", "100", "-o", str(target), "--seed", "9")
    assert result.exit_code == 0, result.output
    text = target.read_text("utf-8").splitlines()
    assert text[0] == "name,description,price" and len(text) >= 101
    arr = invoke("item", "generate", "3", "--format", "json")
    assert json.loads(arr.stdout) == list(generate_items(3, seed=0))
    bad = invoke("item", "generate", "3", "-o", str(tmp_path / "x.txt"))
    assert bad.exit_code == 2 and "--format" in bad.stderr


def test_bulk_commands_have_help_with_an_example() -> None:
    for command in ("import", "export", "generate"):
        result = invoke("item", command, "--help")
        assert result.exit_code == 0 and "Example:" in result.stdout, command
