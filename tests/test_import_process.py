"""Big files are read and validated in a separate process (dmitems.importer.process).

What only the process path has, on real SQLite and PostgreSQL: which path a
source takes, chunks that cross the pipe unchanged (so the import behaves as
with the reader thread), --skip-rows in the child, Ctrl-C with the child
running (no orphan, no traceback), a child that dies, and a read error that
reads as the thread's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dmitems.formats import open_source
from dmitems.importer import ImportAborted, ImportSpec, import_records
from dmitems.importer import process as importer
from dmitems.importer.chunks import validated_chunks
from tests.test_cli_items import cli  # noqa: F401 - the CLI on a fresh database, per backend
from tests.test_import_cli import _count

STARTED: list[int] = []  # pids of the reader processes started by this module's tests


@pytest.fixture(autouse=True)
def every_file_through_the_process(monkeypatch):
    """Threshold 0, and after each test: every reader process it started has ended."""
    monkeypatch.setattr(importer, "PROCESS_THRESHOLD", 0)
    original = importer.ProcessFeed.__init__

    def recording(self, *args, **kwargs):
        original(self, *args, **kwargs)
        STARTED.append(self._process.pid)

    monkeypatch.setattr(importer.ProcessFeed, "__init__", recording)
    before = len(STARTED)
    yield
    for pid in STARTED[before:]:
        assert _gone(pid), f"reader process {pid} outlived its import"


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with open(task / "children") as children:
            found += [int(child) for child in children.read().split()]
    return found


# -- which path ----------------------------------------------------------------


async def test_files_take_the_process_stdin_and_small_files_the_thread(
    database, tmp_path: Path, monkeypatch
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"name": f"n{i}", "price": i}) + "\n" for i in range(50)))
    before = len(STARTED)
    summary = await import_records(database, ImportSpec(open_source(path, None)))
    assert summary.committed == 50 and len(STARTED) == before + 1

    monkeypatch.setattr(importer, "PROCESS_THRESHOLD", path.stat().st_size + 1)
    summary = await import_records(database, ImportSpec(open_source(path, None)))
    assert summary.committed == 50 and len(STARTED) == before + 1  # the thread read it

    monkeypatch.setattr(importer, "PROCESS_THRESHOLD", 0)
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["cp", str(path), str(fifo)])
    try:
        source = open_source(fifo, None)
        assert source.path is None  # not a regular file: only this process can read it
        summary = await import_records(database, ImportSpec(source))
    finally:
        writer.wait(30)
    assert summary.committed == 50 and len(STARTED) == before + 1


async def test_chunks_cross_the_pipe_unchanged(tmp_path: Path) -> None:
    """What the child sends rebuilds into the very Chunk the thread would have made."""
    lines = [
        json.dumps({"name": "机械键盘", "price": 199, "description": "87 键"}),
        json.dumps({"name": "free", "price": 0}),
        "{not json",
        json.dumps({"name": "", "price": -1, "nested": {"a": [1.5, True, None]}}),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    for skip in (0, 1):
        expected = list(validated_chunks(open_source(path, None), 3, skip))
        assert expected and any(chunk.rejects for chunk in expected)
        for chunk in expected:
            assert importer.unpack_chunk(importer.pack_chunk(chunk)) == chunk

        source = open_source(path, None)
        feed = importer.ProcessFeed(source, 3, skip)
        received = []
        try:
            while (chunk := await feed.get()) is not None:
                received.append(chunk)
        finally:
            feed.stop()
            source.close()
        assert received == expected
        assert feed._process.returncode == 0
    assert [chunk.positions for chunk in received] == [[2]]  # the first record skipped


# -- Ctrl-C and a dying child ----------------------------------------------------


def _big_file(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8") as out:
        out.write("name,description,price\n")
        out.writelines(f"商品 {i},description {i},{i}\n" for i in range(rows))
    return path


def _start_file_import(database_url: str, path: Path, *options: str) -> subprocess.Popen[bytes]:
    """``dmitems item import FILE`` in its own process, every file through the reader process."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DMITEMS_")}
    program = (
        "import sys; import dmitems.importer.process as i; i.PROCESS_THRESHOLD = 0; "
        "from dmitems.cli import main; sys.argv[0] = 'dmitems'; main()"
    )
    return subprocess.Popen(
        [sys.executable, "-c", program, "--url", database_url, "item", "import", str(path),
         "--quiet", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment,
    )


def _reader_of(process: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = _children(process.pid)
        if children:
            return children[0]
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the reader process never started")


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.05)
    return False


def _one_line(process: subprocess.Popen[bytes], code: int) -> str:
    _, stderr = process.communicate(timeout=60)
    text = stderr.decode()
    assert process.returncode == code, text
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    return text


def test_ctrl_c_stops_the_reader_and_keeps_what_was_committed(cli, database_url, tmp_path) -> None:
    path = _big_file(tmp_path, 300_000)
    process = _start_file_import(
        database_url, path, "--commit-every", "1000", "--batch-size", "1000"
    )
    reader = _reader_of(process)
    status = Path(f"/proc/{reader}/status").read_text()
    masks = {line.split(":")[0]: int(line.split()[1], 16) for line in status.splitlines()
             if line.startswith(("SigBlk:", "SigIgn:"))}
    # Blocked while the child starts, ignored from then on: never a KeyboardInterrupt there.
    assert (masks["SigBlk"] | masks["SigIgn"]) & (1 << (signal.SIGINT - 1)), status
    deadline = time.monotonic() + 60
    while _count(database_url) < 3000 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    text = _one_line(process, 130)
    assert _gone(reader), "the reader process outlived the import"
    committed = int(re.search(r"(\d+) rows were committed and stay", text)[1])
    assert 3000 <= committed < 300_000, text
    assert _count(database_url) == committed


def test_ctrl_c_in_atomic_mode_with_the_reader_running(cli, database_url, tmp_path) -> None:
    path = _big_file(tmp_path, 300_000)
    process = _start_file_import(database_url, path, "--batch-size", "1000")
    reader = _reader_of(process)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    text = _one_line(process, 130)
    assert "rolled back, nothing was written" in text, text
    assert _gone(reader)
    assert _count(database_url) == 0


def test_a_reader_that_dies_is_one_line_and_nothing_is_written(cli, database_url, tmp_path) -> None:
    path = _big_file(tmp_path, 300_000)
    process = _start_file_import(database_url, path, "--batch-size", "1000")
    reader = _reader_of(process)
    os.kill(reader, signal.SIGKILL)
    text = _one_line(process, 1)
    assert "reader process ended unexpectedly (exit code -9)" in text, text
    assert _count(database_url) == 0


async def test_a_read_error_from_the_child_is_the_threads_error(
    database, tmp_path, monkeypatch
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes("name,price\n".encode() + "键盘,1\n".encode("gbk"))
    messages = []
    for threshold in (0, path.stat().st_size + 1):  # the process, then the thread
        monkeypatch.setattr(importer, "PROCESS_THRESHOLD", threshold)
        with pytest.raises(ImportAborted) as caught:
            await import_records(database, ImportSpec(open_source(path, None)))
        assert caught.value.exit_code == 2
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith(f"{path}: cannot decode byte 0xbc at offset 11 as utf-8;")
    assert "try --encoding gbk" in messages[0]
