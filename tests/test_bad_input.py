"""The bad-input matrix: every command, fed what a hurried or hostile user feeds it.

Each case must end in one line on stderr (``error: ...``), the documented exit
code (``dmitems/errors.py``), no traceback, no password, and the database it
pointed at exactly as it was.  With ``--debug`` the traceback is allowed and the
exit code is still the documented one.

Placeholders in a case's arguments: ``{db}`` a SQLite file holding three items,
``{pg}`` a PostgreSQL database holding three items, ``{dir}`` the test's
directory (files below), ``{pg_host}`` ``127.0.0.1:PORT`` of the suite's server,
``{closed}`` a port nobody listens on, ``{busy}`` a port somebody does.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import invoke
from tests.postgres_server import PASSWORD, free_port

HUGE = "9223372036854775808"  # 2**63
ITEMS = [("键盘", 199, "87 键"), ("mouse", 59, None), ("显示器", 1299, "27 inch")]


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    code: int
    database: str = "sqlite"  # whose contents must not change: sqlite or pg
    env: dict[str, str] = field(default_factory=dict)
    # An import that refuses invalid records lists them (indented) before its error line.
    details: bool = False

    @property
    def debug(self) -> bool:
        return "--debug" in self.args


def case(
    name: str, *args: str, code: int, database: str = "sqlite", details: bool = False, **env: str
) -> Any:
    marks = [pytest.mark.postgres] if database == "pg" or "{pg" in " ".join(args) else []
    return pytest.param(Case(name, args, code, database, env, details), id=name, marks=marks)


S = ("--url", "{db}")
P = ("--url", "{pg}")

CASES = [
    # -- bad flags and values -------------------------------------------------------------
    case("unknown-command", *S, "frobnicate", code=2),
    case("unknown-option", *S, "item", "list", "--bogus", code=2),
    case("limit-zero", *S, "item", "list", "--limit", "0", code=2),
    case("limit-too-big", *S, "item", "list", "--limit", "1001", code=2),
    case("limit-not-a-number", *S, "item", "list", "--limit", "ten", code=2),
    case("skip-negative", *S, "item", "list", "--skip", "-1", code=2),
    case("add-no-price", *S, "item", "add", "--name", "x", code=2),
    case("add-negative-price", *S, "item", "add", "--name", "x", "--price", "-1", code=2),
    case("add-price-not-int", *S, "item", "add", "--name", "x", "--price", "1.5", code=2),
    case("add-price-too-big", *S, "item", "add", "--name", "x", "--price", "2147483648", code=2),
    case("add-empty-name", *S, "item", "add", "--name", "", "--price", "1", code=2),
    case("add-name-too-long", *S, "item", "add", "--name", "n" * 256, "--price", "1", code=2),
    case("add-description-too-long", *S, "item", "add", "--name", "x", "--price", "1",
         "--description", "d" * 501, code=2),
    case("get-not-a-number", *S, "item", "get", "one", code=2),
    case("get-missing", *S, "item", "get", "99999", code=4),
    case("update-nothing", *S, "item", "update", "1", code=2),
    case("update-both-descriptions", *S, "item", "update", "1", "--description", "a",
         "--clear-description", code=2),
    case("update-stale-version", *S, "item", "update", "1", "--price", "5",
         "--expect-version", "99", code=5),
    case("update-missing", *S, "item", "update", "99999", "--price", "5", code=4),
    case("delete-unconfirmed", *S, "item", "delete", "1", code=2),
    case("delete-missing", *S, "item", "delete", "99999", "--yes", code=4),
    case("delete-stale-version", *S, "item", "delete", "1", "--yes", "--expect-version", "7",
         code=5),
    case("init-db-drop-unconfirmed", *S, "init-db", "--drop", code=2),
    case("export-unknown-format", *S, "item", "export", "--format", "xml", code=2),
    case("export-limit-zero", *S, "item", "export", "--limit", "0", code=2),
    case("import-unknown-format", *S, "item", "import", "{dir}/good.csv", "--format", "xml",
         code=2),
    case("import-batch-size-zero", *S, "item", "import", "{dir}/good.csv", "--batch-size", "0",
         code=2),
    case("import-unknown-method", *S, "item", "import", "{dir}/good.csv", "--method", "fast",
         code=2),
    case("import-unknown-encoding", *S, "item", "import", "{dir}/good.csv", "--encoding",
         "klingon", code=2),
    case("generate-negative", *S, "item", "generate", "-5", code=2),
    case("generate-unknown-format", *S, "item", "generate", "3", "--format", "yaml", code=2),
    case("serve-unknown-mode", *S, "serve", "--mode", "fast", code=2),
    case("serve-port-out-of-range", *S, "serve", "--port", "70000", code=2),
    case("serve-zero-workers", *S, "serve", "--workers", "0", code=2),
    case("serve-port-in-use", *S, "serve", "--port", "{busy}", code=2),
    case("bench-unknown-mode", *S, "bench", "--mode", "sideways", code=2),
    case("bench-unknown-target", *S, "bench", "--target", "ftp", code=2),
    case("bench-bad-concurrency", *S, "bench", "--concurrency", "lots", code=2),
    case("bench-bad-duration", *S, "bench", "--duration", "forever", code=2),
    case("bench-bad-fail-if", *S, "bench", "--fail-if", "p99>>3", code=2),
    case("bench-compare-missing-files", *S, "bench", "compare", "{dir}/a.json", "{dir}/b.json",
         code=2),
    case("bench-compare-not-json", *S, "bench", "compare", "{dir}/malformed.json",
         "{dir}/malformed.json", code=2),
    case("doctor-zero-concurrency", *S, "doctor", "--concurrency", "0", code=2),
    case("config-show-unknown-option", *S, "config", "show", "--yaml", code=2),
    case("config-file-missing", "--config", "{dir}/none.toml", *S, "config", "show", code=2),
    case("config-file-not-toml", "--config", "{dir}/broken.toml", *S, "config", "show", code=2),
    case("config-file-unknown-key", "--config", "{dir}/unknown.toml", *S, "config", "show",
         code=2),
    case("env-pool-size-zero", *S, "item", "list", code=2, DMITEMS_DATABASE_POOL_SIZE="0"),
    case("env-port-not-a-number", *S, "config", "show", code=2, DMITEMS_SERVER_PORT="http"),
    # -- bad files ------------------------------------------------------------------------
    case("import-missing-file", *S, "item", "import", "{dir}/missing.csv", code=2),
    case("import-directory", *S, "item", "import", "{dir}", "--format", "csv", code=2),
    case("import-binary", *S, "item", "import", "{dir}/binary.csv", code=2),
    case("import-gbk-without-encoding", *S, "item", "import", "{dir}/gbk.csv", code=2),
    case("import-malformed-json", *S, "item", "import", "{dir}/malformed.json", code=2),
    case("import-malformed-jsonl", *S, "item", "import", "{dir}/malformed.jsonl", code=2, details=True),
    case("import-missing-column", *S, "item", "import", "{dir}/no-price.csv", code=2),
    case("import-invalid-value", *S, "item", "import", "{dir}/bad-price.csv", code=2, details=True),
    case("import-pg-gbk-without-encoding", *P, "item", "import", "{dir}/gbk.csv", code=2,
         database="pg"),
    case("import-pg-invalid-value", *P, "item", "import", "{dir}/bad-price.csv", code=2, details=True,
         database="pg"),
    case("export-into-missing-directory", *S, "item", "export", "-o", "{dir}/no/such/x.csv",
         code=2),
    case("generate-into-missing-directory", *S, "item", "generate", "3", "-o",
         "{dir}/no/such/x.csv", code=2),
    # -- bad URLs -------------------------------------------------------------------------
    case("url-unknown-scheme", "--url", "oracle://scott:tiger@h/x", "item", "list", code=3),
    case("url-unparsable", "--url", "not a url at all", "item", "list", code=3),
    case("url-sqlite-missing-directory", "--url", "sqlite+aiosqlite:///{dir}/no/such/x.db",
         "item", "list", code=3),
    case("url-sqlite-missing-directory-init", "--url", "sqlite+aiosqlite:///{dir}/no/such/x.db",
         "init-db", code=3),
    case("url-pg-closed-port", "--url", f"postgresql+asyncpg://dmitems:{PASSWORD}@127.0.0.1:{{closed}}/x",
         "item", "list", code=3),
    case("url-pg-closed-port-doctor", "--url",
         f"postgresql+asyncpg://dmitems:{PASSWORD}@127.0.0.1:{{closed}}/x", "doctor", code=3),
    case("url-pg-wrong-password", "--url", "postgresql+asyncpg://dmitems:wrong-pw@{pg_host}/postgres",
         "item", "list", code=3, database="pg"),
    case("url-pg-wrong-password-sync", "--url",
         "postgresql+psycopg://dmitems:wrong-pw@{pg_host}/postgres", "item", "export", code=3,
         database="pg"),
    case("url-pg-wrong-database", "--url",
         f"postgresql+asyncpg://dmitems:{PASSWORD}@{{pg_host}}/no_such_db", "item", "list",
         code=3, database="pg"),
    case("url-pg-wrong-database-init", "--url",
         f"postgresql+asyncpg://dmitems:{PASSWORD}@{{pg_host}}/no_such_db", "init-db", code=3,
         database="pg"),
    case("url-libpq-bad-sslmode", "--url", "{pg}?sslmode=always", "item", "list", code=2,
         database="pg"),
    case("url-libpq-sslmode-require-no-ssl", "--url", "{pg}?sslmode=require", "item", "list",
         code=3, database="pg"),
    case("url-libpq-missing-root-cert", "--url",
         "{pg}?sslmode=verify-full&sslrootcert={dir}/none.crt", "item", "list", code=2,
         database="pg"),
    case("url-libpq-unknown-parameter", "--url", "{pg}?keepalives_idle=5", "item", "list",
         code=2, database="pg"),
    case("url-libpq-bad-options", "--url", "{pg}?options=-x", "item", "list", code=2,
         database="pg"),
    # -- a missing table ------------------------------------------------------------------
    case("missing-table-list", "--url", "sqlite+aiosqlite:///{dir}/empty.db", "item", "list",
         code=3, database="none"),
    case("missing-table-add", "--url", "sqlite+aiosqlite:///{dir}/empty.db", "item", "add",
         "--name", "x", "--price", "1", code=3, database="none"),
    case("missing-table-import", "--url", "sqlite+aiosqlite:///{dir}/empty.db", "item", "import",
         "{dir}/good.csv", code=3, database="none"),
    case("missing-table-export", "--url", "sqlite+aiosqlite:///{dir}/empty.db", "item", "export",
         code=3, database="none"),
    case("missing-table-pg-get", "--url", f"postgresql+asyncpg://dmitems:{PASSWORD}@{{pg_host}}/postgres",
         "item", "get", "1", code=3, database="pg"),
    # -- ids of 2**63 and more ------------------------------------------------------------
    case("huge-id-get", *S, "item", "get", HUGE, code=2),
    case("huge-id-update", *S, "item", "update", HUGE, "--price", "1", code=2),
    case("huge-id-delete", *S, "item", "delete", HUGE, "--yes", code=2),
    case("huge-expect-version", *S, "item", "update", "1", "--price", "1", "--expect-version",
         HUGE, code=2),
    case("huge-skip", *S, "item", "list", "--skip", HUGE, code=2),
    case("huge-id-get-pg", *P, "item", "get", HUGE, code=2, database="pg"),
    case("huge-id-delete-pg", *P, "item", "delete", HUGE, "--yes", code=2, database="pg"),
    # -- --debug keeps the exit code --------------------------------------------------------
    case("debug-get-missing", "--debug", *S, "item", "get", "99999", code=4),
    case("debug-stale-version", "--debug", *S, "item", "update", "1", "--price", "5",
         "--expect-version", "99", code=5),
    case("debug-import-gbk", "--debug", *S, "item", "import", "{dir}/gbk.csv", code=2),
    case("debug-unknown-scheme", "--debug", "--url", "oracle://scott:tiger@h/x", "item", "list",
         code=3),
    case("debug-missing-table", "--debug", "--url", "sqlite+aiosqlite:///{dir}/empty.db", "item",
         "list", code=3, database="none"),
    case("debug-pg-wrong-database", "--debug", "--url",
         f"postgresql+asyncpg://dmitems:{PASSWORD}@{{pg_host}}/no_such_db", "item", "list",
         code=3, database="pg"),
    case("debug-pg-huge-id", "--debug", *P, "item", "get", HUGE, code=2, database="pg"),
    case("debug-libpq-unknown-parameter", "--debug", "--url", "{pg}?keepalives_idle=5", "item",
         "list", code=2, database="pg"),
]


def _files(directory: Path) -> None:
    (directory / "good.csv").write_text("name,price\nok,1\n")
    (directory / "binary.csv").write_bytes(bytes(range(256)) * 4)
    (directory / "gbk.csv").write_bytes("name,price\n上海,1\n".encode("gbk"))
    (directory / "malformed.json").write_text('[{"name": "a", "price": 1},')
    (directory / "malformed.jsonl").write_text('{"name": "a", "price": 1}\n{"name": \n')
    (directory / "no-price.csv").write_text("name\nx\n")
    (directory / "bad-price.csv").write_text("name,price\nx,1\ny,cheap\n")
    (directory / "broken.toml").write_text("[database\nurl = 1\n")
    (directory / "unknown.toml").write_text("[database]\ncolour = 'blue'\n")
    (directory / "empty.db").touch()


def _sqlite_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT id, name, description, price, version, updated_at FROM items ORDER BY id"
        ).fetchall()


def _pg_rows(url: str) -> list[tuple[Any, ...]]:
    import psycopg

    plain = url.replace("postgresql+asyncpg", "postgresql")
    with psycopg.connect(plain) as connection:
        return connection.execute(
            "SELECT id, name, description, price, version, updated_at FROM items ORDER BY id"
        ).fetchall()


def _seed(url: str) -> None:
    assert invoke("--url", url, "init-db").exit_code == 0
    for name, price, description in ITEMS:
        args = ["--url", url, "item", "add", "--name", name, "--price", str(price)]
        if description:
            args += ["--description", description]
        assert invoke(*args).exit_code == 0


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("bad", CASES)
def test_bad_input(bad: Case, request: pytest.FixtureRequest, tmp_path: Path,
                   busy_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    _files(tmp_path)
    sqlite_file = tmp_path / "items.db"
    values = {"dir": str(tmp_path), "db": f"sqlite+aiosqlite:///{sqlite_file}",
              "closed": str(free_port()), "busy": str(busy_port)}
    _seed(values["db"])
    if bad.database == "pg" or "{pg" in " ".join(bad.args):
        pg_url = str(request.getfixturevalue("pg_url"))
        _seed(pg_url)
        values["pg"] = pg_url
        values["pg_host"] = pg_url.split("@", 1)[1].split("/", 1)[0]
    before = {"sqlite": _sqlite_rows(sqlite_file),
              "pg": _pg_rows(values["pg"]) if "pg" in values else None}
    for key, value in bad.env.items():
        monkeypatch.setenv(key, value)

    outcome = invoke(*(arg.format(**values) for arg in bad.args))

    assert outcome.exit_code == bad.code, outcome.output
    assert outcome.exception is None, outcome.exception
    lines = outcome.stderr.splitlines()
    assert lines and lines[-1].startswith("error: "), outcome.stderr
    if bad.debug:
        assert sum(line.startswith("error: ") for line in lines) == 1, outcome.stderr
    elif bad.details:
        assert all(line.startswith("  line ") for line in lines[:-1]), outcome.stderr
    else:
        assert len(lines) == 1, outcome.stderr
        assert "Traceback" not in outcome.output
    assert PASSWORD not in outcome.output and "tiger" not in outcome.output
    assert "<class" not in outcome.stderr
    assert _sqlite_rows(sqlite_file) == before["sqlite"]
    if before["pg"] is not None:
        assert _pg_rows(values["pg"]) == before["pg"]


def test_the_matrix_is_big_enough_and_covers_every_command() -> None:
    cases = [param.values[0] for param in CASES]
    assert len(cases) >= 60
    lines = [" " + " ".join(c.args) + " " for c in cases]
    for command in ("init-db", "item add", "item get", "item list", "item update",
                    "item delete", "item import", "item export", "item generate", "serve",
                    "bench", "bench compare", "doctor", "config show"):
        assert any(f" {command} " in line for line in lines), command


@pytest.mark.parametrize(
    "url",
    ["sqlite+aiosqlite:///{dir}/no/such/x.db", "oracle://scott:tiger@h/x",
     "postgresql+asyncpg://u:tiger@127.0.0.1:{closed}/x"],
    ids=["sqlite-missing-directory", "unknown-scheme", "pg-closed-port"],
)
def test_real_processes_print_one_line(url: str, tmp_path: Path) -> None:
    """As a real process (nothing left running after exit prints a stray traceback)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("DMITEMS_")}
    full = url.format(dir=tmp_path, closed=free_port())
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-m", "dmitems", "--url", full, "init-db"],
            capture_output=True, text=True, env=env, timeout=60,
        )
        assert done.returncode == 3, done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
