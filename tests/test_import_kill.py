"""A real ``dmitems item import`` process killed with SIGKILL, on SQLite and on PostgreSQL.

What survives a crash is what was committed, and what the import reported is
what was committed: atomic mode leaves no row; ``--commit-every`` leaves
exactly the rows of the last "committed N rows (resume with --skip-rows K)"
line it printed; and running the import again with ``--skip-rows K``
completes the input with no duplicate and no gap.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.test_cli_items import cli  # noqa: F401 - the CLI on a fresh database, per backend
from tests.test_import_cli import run_sql

pytestmark = pytest.mark.slow

CHECKPOINT = re.compile(r"committed ([\d,]+) rows \(resume with --skip-rows (\d+)\)")


def _names(database_url: str) -> list[str]:
    from sqlalchemy import text

    from dmitems.config import load_settings
    from dmitems.db import Database

    database = Database(load_settings(flags={"database_url": database_url}))
    try:
        with database.sync_begin() as connection:
            return list(connection.execute(text("SELECT name FROM items ORDER BY id")).scalars())
    finally:
        database.sync_dispose()


class Import:
    """``dmitems item import`` as a child process, its stderr read line by line on a thread."""

    def __init__(self, database_url: str, source: str, *options: str) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("DMITEMS_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dmitems", "--url", database_url, "item", "import", source,
             *options],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=environment,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line.decode())
        self.lines.put(None)

    def feed(self, first: int, count: int) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(
            "".join(json.dumps({"name": f"n{i}", "price": i}) + "\n"
                    for i in range(first, first + count)).encode()
        )
        self.process.stdin.flush()

    def wait_for_commit(self, at_least: int) -> None:
        """Read stderr until a checkpoint line reports ``at_least`` committed rows."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"the import ended early: {''.join(self.seen)}"
            self.seen.append(line)
            match = CHECKPOINT.search(line)
            if match and int(match[1].replace(",", "")) >= at_least:
                return
        raise AssertionError(f"no commit of {at_least} rows reported: {''.join(self.seen)}")

    def kill(self) -> tuple[int, int]:
        """SIGKILL; the (committed, skip-rows) of the last checkpoint line it printed."""
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(60) == -signal.SIGKILL, "the import ended before the kill"
        while (line := self.lines.get(timeout=60)) is not None:
            self.seen.append(line)
        checkpoints = [CHECKPOINT.search(line) for line in self.seen]
        last = [match for match in checkpoints if match][-1]
        return int(last[1].replace(",", "")), int(last[2])


def _resume(database_url: str, source: str, *options: str, stdin: bytes = b"") -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DMITEMS_")}
    done = subprocess.run(
        [sys.executable, "-m", "dmitems", "--url", database_url, "item", "import", source,
         "--quiet", *options],
        input=stdin, capture_output=True, env=environment, timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()


def test_atomic_import_killed_leaves_no_row(cli, database_url) -> None:
    running = Import(database_url, "-", "--format", "jsonl", "--batch-size", "500")
    running.feed(0, 2500)  # five chunks inserted in the open transaction
    time.sleep(1.5)
    running.process.send_signal(signal.SIGKILL)
    assert running.process.wait(60) == -signal.SIGKILL
    assert run_sql(database_url, "SELECT count(*) FROM items") == 0


def test_commit_every_killed_keeps_what_it_reported_and_resumes(cli, database_url) -> None:
    options = ("--format", "jsonl", "--commit-every", "1000", "--batch-size", "500")
    running = Import(database_url, "-", *options)
    running.feed(0, 3700)  # 3,000 committed, 500 inserted and not committed, 200 read
    running.wait_for_commit(3000)
    time.sleep(0.5)
    committed, skip = running.kill()
    assert (committed, skip) == (3000, 3000), running.seen
    assert run_sql(database_url, "SELECT count(*) FROM items") == 3000

    records = "".join(json.dumps({"name": f"n{i}", "price": i}) + "\n" for i in range(5000))
    _resume(database_url, "-", *options, "--skip-rows", str(skip), stdin=records.encode())
    assert _names(database_url) == [f"n{i}" for i in range(5000)]


def test_a_file_import_killed_mid_run_resumes_without_duplicates_or_gaps(
    cli, database_url, tmp_path: Path
) -> None:
    rows = 300_000
    path = tmp_path / "items.csv"
    with open(path, "w", encoding="utf-8") as out:
        out.write("name,description,price\n")
        out.writelines(f"n{i},,{i}\n" for i in range(rows))
    options = ("--commit-every", "5000", "--batch-size", "5000")
    running = Import(database_url, str(path), *options)
    running.wait_for_commit(20_000)
    committed, skip = running.kill()  # wherever it is: inserting, committing or reading
    assert committed == skip and 20_000 <= committed < rows, running.seen
    assert run_sql(database_url, "SELECT count(*) FROM items") == committed

    _resume(database_url, str(path), *options, "--skip-rows", str(skip))
    assert _names(database_url) == [f"n{i}" for i in range(rows)]
