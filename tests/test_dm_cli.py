"""The CLI on dm+dmAsync over the dmPython DRIVER DOUBLE (no DM server can run here)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli_runner import invoke
from tests.dm_driver_double import installed

PASSWORD = "Secret_pw1"
DM_URL = f"dm+dmAsync://SYSDBA:{PASSWORD}@127.0.0.1:5236"


@pytest.fixture
def double() -> Iterator[Any]:
    with installed() as module:
        yield module


def test_cli_crud_over_the_double(double: Any) -> None:
    def cli(*args: str) -> Any:
        return invoke("--url", DM_URL, *args)

    assert cli("init-db").exit_code == 0
    added = cli("item", "add", "--name", "机械键盘", "--price", "199", "--json")
    assert added.exit_code == 0, added.output
    item = added.json()
    assert item["name"] == "机械键盘" and item["version"] == 1
    listed = cli("item", "list", "--json")
    assert listed.exit_code == 0 and [i["id"] for i in listed.json()["items"]] == [item["id"]]
    updated = cli("item", "update", str(item["id"]), "--price", "179", "--expect-version", "1",
                  "--json")
    assert updated.exit_code == 0, updated.output
    assert updated.json()["price"] == 179 and updated.json()["version"] == 2
    stale = cli("item", "update", str(item["id"]), "--price", "1", "--expect-version", "1")
    assert stale.exit_code == 5
    assert cli("item", "delete", str(item["id"]), "--yes").exit_code == 0
    missing = cli("item", "get", str(item["id"]))
    assert missing.exit_code == 4 and missing.stderr.count("\n") == 1
    assert all(not call.on_loop_thread for call in double.calls)
    # The CLI's loop is dmitems' own: every call in a worker thread ran on the executor
    # dmitems sized (the sync engine's calls run on the main thread, with no loop).
    workers = {call.thread for call in double.calls if call.thread != "MainThread"}
    assert workers and {name.rpartition("_")[0] for name in workers} == {"dmitems-db"}
    assert PASSWORD not in "".join(c.output for c in (added, listed, updated, stale, missing))


def test_cli_login_failure_is_one_line_exit_3(double: Any) -> None:
    double.configure(refuse_logins=double.dm_error(-200, "Invalid username or password"))
    result = invoke("--url", DM_URL, "item", "list")
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1 and "login failed" in result.stderr
    assert PASSWORD not in result.output


def test_init_db_sizes_strings_in_bytes_when_length_in_char_is_0(double: Any) -> None:
    double.configure(length_in_char=0)
    result = invoke("--url", DM_URL, "init-db", "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["length_in_char"] == 0
    ddl = next(c.statement for c in double.calls if c.statement and "TABLE items" in c.statement
               and c.statement.startswith("\nCREATE"))
    assert "VARCHAR2(1020)" in ddl and "VARCHAR2(2000)" in ddl
    name = "键" * 255  # 765 bytes in UTF-8: fits a 1020-byte column
    added = invoke("--url", DM_URL, "item", "add", "--name", name, "--price", "1", "--json")
    assert added.exit_code == 0 and added.json()["name"] == name


def test_init_db_keeps_char_semantics_when_length_in_char_is_1(double: Any) -> None:
    result = invoke("--url", DM_URL, "init-db", "--json")
    assert result.exit_code == 0 and result.json()["length_in_char"] == 1
    ddl = next(c.statement for c in double.calls if c.statement and "TABLE items" in c.statement
               and c.statement.startswith("\nCREATE"))
    assert "VARCHAR2(255 CHAR)" in ddl
