"""`dmitems item import|export` end to end through the CLI, on real SQLite and PostgreSQL.

Each bad input must give a clear one-line error, the documented exit code, and
write nothing in atomic mode.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_runner import invoke
from tests.test_cli_items import cli  # noqa: F401 - the CLI on a fresh database, per backend

ITEMS = [
    {"name": "机械键盘", "description": "87 键，青轴", "price": 199},
    {"name": "Wireless Mouse", "description": None, "price": 0},
    {"name": "引号\"逗号,与换行\n之后", "description": "emoji 🎉 and ‘quotes’", "price": 2_147_483_647},
]


def stored(cli) -> list[dict]:
    result = cli("item", "export", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def csv_text(records: list[dict], header: str = "name,description,price") -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header.split(","))
    for record in records:
        writer.writerow(["" if record.get(k) is None else record.get(k) for k in header.split(",")])
    return buffer.getvalue()


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def as_json(records: list[dict]) -> str:
    return json.dumps(records, ensure_ascii=False, indent=2)


def as_jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


# -- formats, stdin, encodings ----------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "render"), [("csv", csv_text), ("json", as_json), ("jsonl", as_jsonl)]
)
def test_every_format_from_a_file_and_from_stdin(cli, tmp_path, suffix, render) -> None:
    path = write(tmp_path, f"in.{suffix}", render(ITEMS))
    result = cli("item", "import", path, "--json")
    assert result.exit_code == 0, result.output
    summary = result.json()
    assert (summary["read"], summary["inserted"], summary["rejected"]) == (3, 3, 0)
    assert summary["format"] == suffix and summary["outcome"] == "ok"
    assert stored(cli) == ITEMS

    piped = cli("item", "import", "-", "--format", suffix, "--json", input=render(ITEMS))
    assert piped.exit_code == 0, piped.output
    assert piped.json()["source"] == "stdin" and piped.json()["inserted"] == 3
    assert stored(cli) == ITEMS + ITEMS


def test_summary_table_and_stdin_needs_a_format(cli, tmp_path) -> None:
    result = cli("item", "import", write(tmp_path, "in.jsonl", as_jsonl(ITEMS)))
    assert result.exit_code == 0, result.output
    for label in ("read", "committed", "rejected", "elapsed", "rows/s"):
        assert label in result.stdout
    no_format = cli("item", "import", "-", input=as_jsonl(ITEMS))
    assert no_format.exit_code == 2 and "--format" in no_format.stderr
    unknown_suffix = cli("item", "import", write(tmp_path, "in.txt", "x"))
    assert unknown_suffix.exit_code == 2 and "--format" in unknown_suffix.stderr
    missing = cli("item", "import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    assert len(stored(cli)) == 3


def test_gbk_needs_its_encoding_and_the_error_says_so(cli, tmp_path) -> None:
    path = write(tmp_path, "excel.csv", csv_text(ITEMS[:1]), encoding="gbk")
    wrong = cli("item", "import", path)
    assert wrong.exit_code == 2
    assert "--encoding gbk" in wrong.stderr and "nothing was written" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    assert stored(cli) == []
    right = cli("item", "import", path, "--encoding", "gbk")
    assert right.exit_code == 0, right.output
    assert stored(cli) == ITEMS[:1]
    bad_name = cli("item", "import", path, "--encoding", "klingon")
    assert bad_name.exit_code == 2 and "unknown encoding" in bad_name.stderr


@pytest.mark.parametrize("suffix", ["csv", "json", "jsonl"])
def test_utf8_bom_is_read(cli, tmp_path, suffix) -> None:
    render = {"csv": csv_text, "json": as_json, "jsonl": as_jsonl}[suffix]
    path = write(tmp_path, f"bom.{suffix}", render(ITEMS), encoding="utf-8-sig")
    assert Path(path).read_bytes().startswith(b"\xef\xbb\xbf")
    result = cli("item", "import", path)
    assert result.exit_code == 0, result.output
    assert stored(cli) == ITEMS


@pytest.mark.parametrize(
    ("name", "text"),
    [("empty.csv", ""), ("empty.json", ""), ("empty.jsonl", ""), ("header.csv", "name,price\r\n"),
     ("array.json", "[ ]"), ("blank.jsonl", "\n\n")],
)
def test_empty_inputs_import_nothing_and_succeed(cli, tmp_path, name, text) -> None:
    result = cli("item", "import", write(tmp_path, name, text), "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["read"] == 0 and result.json()["inserted"] == 0


# -- columns --------------------------------------------------------------------


def test_missing_required_column(cli, tmp_path) -> None:
    result = cli("item", "import", write(tmp_path, "in.csv", "name,description\na,b\n"))
    assert result.exit_code == 2
    assert "missing required column 'price'" in result.stderr
    assert stored(cli) == []


def test_extra_column_fails_unless_ignored(cli, tmp_path) -> None:
    text = "Name,price,colour\n机械键盘,199,black\n"
    path = write(tmp_path, "in.csv", text)
    refused = cli("item", "import", path)
    assert refused.exit_code == 2
    assert "unknown column 'colour'" in refused.stderr and "--ignore-extra" in refused.stderr
    assert stored(cli) == []
    accepted = cli("item", "import", path, "--ignore-extra")
    assert accepted.exit_code == 0, accepted.output
    assert stored(cli) == [{"name": "机械键盘", "description": None, "price": 199}]

    records = [{"name": "x", "price": 1, "sku": "A-1"}]
    jsonl = write(tmp_path, "in.jsonl", as_jsonl(records))
    refused = cli("item", "import", jsonl)
    assert refused.exit_code == 2 and "line 1: sku: Extra inputs are not permitted" in refused.stderr
    assert cli("item", "import", jsonl, "--ignore-extra").exit_code == 0
    assert len(stored(cli)) == 2


# -- invalid records ----------------------------------------------------------------


def test_malformed_json_reports_the_position(cli, tmp_path) -> None:
    text = '[\n  {"name": "a", "price": 1},\n  {"name": "b", "price": 2,}\n]\n'
    result = cli("item", "import", write(tmp_path, "in.json", text))
    assert result.exit_code == 2
    assert "malformed JSON at line 3, column 28" in result.stderr
    assert "nothing was written" in result.stderr
    assert stored(cli) == []

    lines = '{"name": "a", "price": 1}\n{"name": "b", "price": \n'
    result = cli("item", "import", write(tmp_path, "in.jsonl", lines))
    assert result.exit_code == 2
    assert "line 2: record: malformed JSON at column" in result.stderr
    assert stored(cli) == []


@pytest.mark.parametrize("suffix", ["csv", "json", "jsonl"])
def test_invalid_records_are_named_and_nothing_is_written(cli, tmp_path, suffix) -> None:
    records = [{"name": f"ok {i}", "description": None, "price": i} for i in range(30)]
    records[3] = {"name": "x" * 256, "description": None, "price": 1}
    records[7] = {"name": "neg", "description": None, "price": -5}
    records[11] = {"name": "frac", "description": None, "price": "12.5" if suffix == "csv" else 12.5}
    records[12] = {"name": "long", "description": "d" * 501, "price": 1}
    for i in range(14, 30):
        records[i] = {"name": "", "description": None, "price": "abc"}
    render = {"csv": csv_text, "json": as_json, "jsonl": as_jsonl}[suffix]
    result = cli("item", "import", write(tmp_path, f"in.{suffix}", render(records)))
    assert result.exit_code == 2
    where = "index" if suffix == "json" else "line"
    at = (lambda i: i) if suffix == "json" else (lambda i: i + (2 if suffix == "csv" else 1))
    assert f"{where} {at(3)}: name: String should have at most 255 characters" in result.stderr
    assert f"{where} {at(7)}: price: Input should be greater than or equal to 0" in result.stderr
    assert f"{where} {at(11)}: price: must be an integer" in result.stderr
    assert f"{where} {at(12)}: description: String should have at most 500 characters" in result.stderr
    # 4 + 16*2 problems: the first 20 are shown, then a count.
    assert "… and 16 more problems" in result.stderr
    assert "20 invalid records (36 problems); nothing was written" in result.stderr
    assert stored(cli) == []


@pytest.mark.parametrize("suffix", ["csv", "json", "jsonl"])
def test_a_one_megabyte_field(cli, tmp_path, suffix) -> None:
    huge = "长" * (1024 * 1024 // 3) + "x" * 10
    records = [ITEMS[0], {"name": huge, "description": None, "price": 1}, ITEMS[1]]
    render = {"csv": csv_text, "json": as_json, "jsonl": as_jsonl}[suffix]
    path = write(tmp_path, f"in.{suffix}", render(records))
    assert os.path.getsize(path) > 1_000_000
    result = cli("item", "import", path, "--json")
    assert result.exit_code == 2
    problems = result.json()["problems"]
    assert [(p["field"], p["reason"]) for p in problems] == [
        ("name", "String should have at most 255 characters")
    ]
    assert stored(cli) == []
    rejects = tmp_path / "rejects.jsonl"
    skipped = cli("item", "import", path, "--skip-invalid", "--rejects", str(rejects))
    assert skipped.exit_code == 0, skipped.output
    assert stored(cli) == [ITEMS[0], ITEMS[1]]
    assert json.loads(rejects.read_text("utf-8"))["record"]["name"] == huge


def test_skip_invalid_accounts_for_every_record(cli, tmp_path) -> None:
    records = []
    for i in range(1200):
        if i % 7 == 0:
            records.append({"name": "", "price": i})
        elif i % 11 == 0:
            records.append({"name": f"n{i}", "price": -i})
        else:
            records.append({"name": f"n{i}", "price": i})
    text = as_jsonl(records).replace('{"name": "n500", "price": 500}', "{broken")
    rejects = tmp_path / "rejects.jsonl"
    result = cli(
        "item", "import", write(tmp_path, "in.jsonl", text), "--skip-invalid",
        "--rejects", str(rejects), "--batch-size", "100", "--json",
    )
    assert result.exit_code == 0, result.output
    summary = result.json()
    refused = [json.loads(line) for line in rejects.read_text("utf-8").splitlines()]
    inserted = stored(cli)
    assert summary["read"] == 1200
    assert len(refused) == summary["rejected"] and len(inserted) == summary["inserted"]
    assert len(refused) + len(inserted) == 1200
    assert {r["line"] for r in refused} == {
        i + 1 for i in range(1200) if i % 7 == 0 or i % 11 == 0 or i == 500
    }
    broken = next(r for r in refused if r["line"] == 501)
    assert broken["record"] == "{broken" and "malformed JSON" in broken["reason"]
    negative = next(r for r in refused if r["line"] == 12)
    assert negative["record"] == {"name": "n11", "price": -11}
    assert negative["reason"] == "price: Input should be greater than or equal to 0"
    assert [r["name"] for r in inserted] == [
        f"n{i}" for i in range(1200) if not (i % 7 == 0 or i % 11 == 0 or i == 500)
    ]


def test_default_batch_size_is_the_measured_one() -> None:
    from dmitems.cli.import_command import import_
    from dmitems.importer import DEFAULT_BATCH_SIZE

    import inspect

    assert inspect.signature(import_).parameters["batch_size"].default == DEFAULT_BATCH_SIZE


def test_skip_invalid_needs_a_rejects_file(cli, tmp_path) -> None:
    result = cli("item", "import", write(tmp_path, "in.jsonl", as_jsonl(ITEMS)), "--skip-invalid")
    assert result.exit_code == 2 and "--rejects" in result.stderr
    assert stored(cli) == []


# -- failures inside the database ------------------------------------------------


def run_sql(database_url: str, statement: str) -> int | None:
    """Run one statement through the sync engine; the scalar it returns, if any."""
    from sqlalchemy import text

    from dmitems.config import load_settings
    from dmitems.db import Database

    database = Database(load_settings(flags={"database_url": database_url}))
    try:
        with database.sync_begin() as connection:
            result = connection.execute(text(statement))
            return int(result.scalar_one()) if result.returns_rows else None
    finally:
        database.sync_dispose()


def poison(database_url: str) -> None:
    """Make the database itself refuse rows named 'poison' (a real trigger/constraint)."""
    if database_url.startswith("sqlite"):
        run_sql(database_url, (
            "CREATE TRIGGER no_poison BEFORE INSERT ON items WHEN NEW.name = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned row refused'); END"
        ))
    else:
        run_sql(database_url, "ALTER TABLE items ADD CONSTRAINT no_poison CHECK (name <> 'poison')")


def poisoned_file(tmp_path: Path, count: int, at: int) -> str:
    records = [{"name": f"n{i}", "price": i} for i in range(count)]
    records[at] = {"name": "poison", "price": 1}
    return write(tmp_path, "in.jsonl", as_jsonl(records))


@pytest.mark.parametrize("method", ["auto", "insert"])
def test_a_row_refused_by_the_database_mid_file(cli, database_url, tmp_path, method) -> None:
    poison(database_url)
    path = poisoned_file(tmp_path, 5000, 3456)
    result = cli("item", "import", path, "--batch-size", "1000", "--method", method)
    assert result.exit_code == 6, result.output
    assert "line 3457: rejected by the database" in result.stderr
    assert "nothing was written" in result.stderr
    assert "Traceback" not in result.output
    assert stored(cli) == []

    committed = cli(
        "item", "import", path, "--batch-size", "500", "--commit-every", "1000",
        "--method", method, "--json",
    )
    assert committed.exit_code == 6
    summary = committed.json()
    assert summary["committed"] == 3000 and summary["outcome"] == "failed"
    assert "3000 rows committed before it stay" in committed.stderr
    assert [r["name"] for r in stored(cli)] == [f"n{i}" for i in range(3000)]


# -- Ctrl-C ---------------------------------------------------------------------


def _count(database_url: str) -> int:
    return run_sql(database_url, "SELECT count(*) FROM items") or 0


def _start_import(database_url: str, *options: str) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DMITEMS_")}
    return subprocess.Popen(
        [sys.executable, "-m", "dmitems", "--url", database_url, "item", "import", "-",
         "--format", "jsonl", "--quiet", *options],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment,
    )


def _feed(process: subprocess.Popen[bytes], first: int, count: int) -> None:
    assert process.stdin is not None
    lines = "".join(
        json.dumps({"name": f"n{i}", "price": i}) + "\n" for i in range(first, first + count)
    )
    process.stdin.write(lines.encode())
    process.stdin.flush()


def _interrupt(process: subprocess.Popen[bytes]) -> str:
    """Ctrl-C; the process must end with exit 130 and one line, no traceback."""
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    text = stderr.decode()
    assert process.returncode == 130, text
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    return text


def test_ctrl_c_in_commit_every_mode_keeps_exactly_what_it_says(cli, database_url) -> None:
    process = _start_import(database_url, "--commit-every", "1000", "--batch-size", "1000")
    _feed(process, 0, 3000)
    deadline = time.monotonic() + 60
    while _count(database_url) < 3000 and time.monotonic() < deadline:
        time.sleep(0.1)
    _feed(process, 3000, 500)  # read but not committed
    time.sleep(0.5)
    text = _interrupt(process)
    assert "3000 rows were committed and stay" in text, text
    assert _count(database_url) == 3000


def test_ctrl_c_in_atomic_mode_writes_nothing(cli, database_url) -> None:
    process = _start_import(database_url, "--batch-size", "1000")
    _feed(process, 0, 2500)
    time.sleep(1.5)
    text = _interrupt(process)
    assert "rolled back, nothing was written" in text, text
    assert _count(database_url) == 0


# -- resuming --------------------------------------------------------------------


def test_a_stopped_commit_every_import_prints_the_command_that_resumes_it(
    cli, database_url, tmp_path
) -> None:
    """An invalid record stops the writing; the committed part stays and the summary says
    how to go on from it (the password masked); the resume completes the file."""
    import shlex

    records = [{"name": f"n{i}", "price": i} for i in range(2500)]
    records[2200] = {"name": "n2200", "price": -1}
    path = write(tmp_path, "in.jsonl", as_jsonl(records))
    options = ["--commit-every", "1000", "--batch-size", "500"]
    result = cli("item", "import", path, *options, "--json")
    assert result.exit_code == 2, result.output
    summary = result.json()
    assert (summary["committed"], summary["resume_skip_rows"]) == (2000, 2000)
    assert "only the 2000 rows committed before the first one stay" in result.stderr
    assert result.stderr.splitlines()[:2] == [  # a line per commit, then the error
        "committed 1,000 rows (resume with --skip-rows 1000)",
        "committed 2,000 rows (resume with --skip-rows 2000)",
    ]
    assert len(result.stderr.strip().splitlines()) == 3 and "Traceback" not in result.stderr
    command = shlex.split(summary["resume_command"])
    assert command[:2] == ["dmitems", "--url"] and "pg-test-secret" not in summary["resume_command"]
    assert command[3:] == ["item", "import", path, *options, "--skip-rows", "2000"]

    records[2200]["price"] = 2200  # fixed; the first 2000 records are in the table already
    Path(path).write_text(as_jsonl(records), "utf-8")
    resumed = cli(*command[3:], "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert [item["name"] for item in stored(cli)] == [f"n{i}" for i in range(2500)]


def test_the_summary_table_says_how_to_resume(cli, tmp_path) -> None:
    records = [{"name": f"n{i}", "price": i} for i in range(1500)]
    records[1200]["price"] = "free"
    path = write(tmp_path, "in.csv", csv_text(records))
    result = cli("item", "import", path, "--commit-every", "1000", "--skip-rows", "10")
    assert result.exit_code == 2
    assert "skipped" in result.stdout and "committed" in result.stdout
    assert "to resume: dmitems --url" in result.stdout
    assert result.stdout.rstrip().endswith(f"item import {path} --commit-every 1000 --skip-rows 1010")


# -- export ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_export_then_import_reproduces_every_item(cli, database_url, tmp_path, fmt) -> None:
    generated = tmp_path / "gen.jsonl"
    assert invoke("item", "generate", "3000", "-o", str(generated), "--seed", "7").exit_code == 0
    assert cli("item", "import", str(generated)).exit_code == 0
    special = tmp_path / "special.jsonl"
    special.write_text(as_jsonl(ITEMS), "utf-8")
    assert cli("item", "import", str(special)).exit_code == 0
    before = stored(cli)
    assert len(before) == 3003

    exported = tmp_path / f"out.{fmt}"
    result = cli("item", "export", "--format", fmt, "-o", str(exported), "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["exported"] == 3003
    assert cli("init-db", "--drop", "--yes").exit_code == 0
    again = cli("item", "import", str(exported), "--json")
    assert again.exit_code == 0, again.output
    assert stored(cli) == before


def test_export_filters_and_limits(cli, tmp_path) -> None:
    records = [{"name": f"键盘 {i}" if i % 2 else f"mouse {i}", "price": i} for i in range(50)]
    assert cli("item", "import", write(tmp_path, "in.jsonl", as_jsonl(records))).exit_code == 0
    result = cli("item", "export", "--format", "jsonl", "--where-name", "键盘", "--limit", "10")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["name"] for r in lines] == [f"键盘 {i}" for i in range(1, 20, 2)]
    as_array = cli("item", "export", "--format", "json", "--where-name", "nothing-matches")
    assert as_array.exit_code == 0 and json.loads(as_array.stdout) == []


def test_failed_export_leaves_no_file(cli, database_url, tmp_path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("previous contents")
    run_sql(database_url, "DROP TABLE items")
    result = cli("item", "export", "-o", str(target))
    assert result.exit_code == 3 and "init-db" in result.stderr
    assert target.read_text() == "previous contents"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
