"""``dmitems bench --target http`` against real ``dmitems serve`` processes (SQLite, PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.bench.helpers import TINY, add_user_rows, bench, check_run, init, rows, validate

pytest.importorskip("dmitems.api")


def test_starts_both_servers_measures_and_cleans_up(database_url: str, tmp_path) -> None:
    init(database_url)
    add_user_rows(database_url)
    before = rows(database_url)

    outcome, document = bench(
        database_url, "--target", "http", *TINY, json_file=tmp_path / "out.json"
    )

    assert outcome.exit_code == 0, outcome.output
    validate(document)
    assert set(document["environment"]["servers"]) == {"sync", "async"}
    for run in document["runs"]:
        check_run(run)
        assert run["total"]["errors"] == 0, run["total"]["errors_by_kind"]
        assert all(stats["ok"] > 0 for stats in run["operations"].values())
    assert rows(database_url) == before


def test_existing_server_rows_removed_over_http(tmp_path) -> None:
    from dmitems.bench.servers import ServeProcess
    from dmitems.config import load_settings

    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    init(url)
    add_user_rows(url)
    before = rows(url)
    server = ServeProcess("async", load_settings(flags={"database_url": url}), None).start()
    try:
        outcome, document = bench(
            "sqlite+aiosqlite:///unused.db", "--target", "http", "--url", server.url,
            "--mode", "async", *TINY, json_file=tmp_path / "out.json",
        )
    finally:
        server.stop()
    assert outcome.exit_code == 0, outcome.output
    validate(document)
    cleanup = document["cleanup"]
    assert cleanup["method"] == "http"
    assert cleanup["removed_at_end"] == cleanup["created"] - cleanup["deleted_during_run"]
    assert rows(url) == before
    assert not (tmp_path / "unused.db").exists()


def test_server_down_counts_errors_and_exits_3(tmp_path) -> None:
    from dmitems.bench.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    outcome, document = bench(
        "sqlite+aiosqlite:///unused.db", "--target", "http", "--url", dead, *TINY,
        json_file=tmp_path / "out.json",
    )
    assert outcome.exit_code == 3, outcome.output
    assert outcome.stderr.strip().splitlines()[-1].startswith("error: no request succeeded")
    validate(document)
    (run,) = document["runs"]
    check_run(run)
    assert run["mode"] == "server"
    assert run["total"]["ok"] == 0 and run["total"]["errors"] > 0
    assert set(run["total"]["errors_by_kind"]) <= {"connect", "no_rows"}


def test_sequential_client_reproduces_the_article(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    outcome, document = bench(
        url, "--target", "http", "--client", "sequential", "--requests", "20",
        "--concurrency", "5", "--warmup", "0", "--quiet", json_file=tmp_path / "out.json",
    )
    assert outcome.exit_code == 0, outcome.output
    validate(document)
    assert [run["mode"] for run in document["runs"]] == ["sequential", "concurrent"]
    for run in document["runs"]:
        check_run(run)
        assert run["total"]["count"] + run["skipped"] == 20
    assert "not sync against async database access" in " ".join(outcome.stdout.split())
    assert rows(url) == []
