"""Every item command, end to end through the CLI, on each real backend."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.cli_runner import invoke


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def cli(database_url: str):
    def run(*args: str, **kwargs):
        return invoke("--url", database_url, *args, **kwargs)

    result = run("init-db")
    assert result.exit_code == 0, result.output
    return run


def test_init_db_is_idempotent(cli) -> None:
    again = cli("init-db", "--json")
    assert again.exit_code == 0, again.output
    assert again.json()["created"] is False


def test_init_db_drop_needs_confirmation(cli) -> None:
    cli("item", "add", "--name", "keep", "--price", "1")
    refused = cli("init-db", "--drop")
    assert refused.exit_code == 2
    assert "--yes" in refused.stderr
    assert cli("item", "list", "--json").json()["total"] == 1
    dropped = cli("init-db", "--drop", "--yes", "--json")
    assert dropped.exit_code == 0 and dropped.json()["dropped"] is True
    assert cli("item", "list", "--json").json()["total"] == 0


def test_add_list_get_update_delete(cli) -> None:
    added = cli("item", "add", "--name", "机械键盘", "--price", "199", "--json")
    assert added.exit_code == 0, added.output
    item = added.json()
    assert item["name"] == "机械键盘" and item["price"] == 199 and item["version"] == 1
    assert item["description"] is None

    listed = cli("item", "list")
    assert listed.exit_code == 0
    assert "机械键盘" in listed.stdout

    page = cli("item", "list", "--json").json()
    assert page["total"] == 1 and [i["id"] for i in page["items"]] == [item["id"]]

    got = cli("item", "get", str(item["id"]), "--json").json()
    assert got == item

    updated = cli(
        "item", "update", str(item["id"]), "--price", "179", "--description", "87 键",
        "--expect-version", "1", "--json",
    )
    assert updated.exit_code == 0, updated.output
    after = updated.json()
    assert after["version"] == 2 and after["price"] == 179 and after["description"] == "87 键"
    # As times, not strings: a timestamp on a whole second is written without a fraction.
    assert _when(after["updated_at"]) >= _when(item["updated_at"])
    assert after["created_at"] == item["created_at"]

    cleared = cli("item", "update", str(item["id"]), "--clear-description", "--json").json()
    assert cleared["description"] is None and cleared["version"] == 3

    deleted = cli("item", "delete", str(item["id"]), "--yes")
    assert deleted.exit_code == 0
    assert cli("item", "get", str(item["id"])).exit_code == 4


def test_stale_version_is_a_conflict_and_changes_nothing(cli) -> None:
    item = cli("item", "add", "--name", "a", "--price", "1", "--json").json()
    cli("item", "update", str(item["id"]), "--price", "2")
    stale = cli("item", "update", str(item["id"]), "--price", "3", "--expect-version", "1")
    assert stale.exit_code == 5
    assert stale.stderr.count("\n") == 1 and "version 2" in stale.stderr
    assert cli("item", "get", str(item["id"]), "--json").json()["price"] == 2
    stale_delete = cli("item", "delete", str(item["id"]), "--yes", "--expect-version", "1")
    assert stale_delete.exit_code == 5


def test_list_paging(cli) -> None:
    for n in range(5):
        assert cli("item", "add", "--name", f"item {n}", "--price", str(n)).exit_code == 0
    page = cli("item", "list", "--skip", "1", "--limit", "2", "--json").json()
    assert [i["name"] for i in page["items"]] == ["item 1", "item 2"]
    assert page["total"] == 5 and page["skip"] == 1 and page["limit"] == 2
    filtered = cli("item", "list", "--name-contains", "m 3", "--json").json()
    assert [i["name"] for i in filtered["items"]] == ["item 3"] and filtered["total"] == 1


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("item", "add", "--name", "x", "--price", "-1"), 2, "price"),
        (("item", "add", "--name", "x" * 256, "--price", "1"), 2, "255"),
        (("item", "add", "--name", "   ", "--price", "1"), 2, "name"),
        (("item", "add", "--name", "x", "--price", "1.5"), 2, "--price"),
        (("item", "add", "--name", "x", "--price", "1", "--description", "d" * 501), 2, "500"),
        (("item", "get", "424242"), 4, "not found"),
        (("item", "update", "424242", "--price", "1"), 4, "not found"),
        (("item", "update", "1"), 2, "nothing to update"),
        (("item", "delete", "424242", "--yes"), 4, "not found"),
        (("item", "delete", "1"), 2, "--yes"),
    ],
)
def test_bad_input_is_one_line_with_its_exit_code_and_writes_nothing(
    cli, args, code, fragment
) -> None:
    cli("item", "add", "--name", "existing", "--price", "5")
    before = cli("item", "list", "--json").json()
    result = cli(*args)
    assert result.exit_code == code, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None
    assert cli("item", "list", "--json").json() == before
