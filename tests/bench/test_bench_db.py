"""``dmitems bench --target db`` end to end, on real SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.bench.helpers import TINY, add_user_rows, bench, check_run, init, rows, validate
from tests.cli_runner import invoke


def test_both_modes_count_validate_and_clean_up(database_url: str, tmp_path) -> None:
    init(database_url)
    add_user_rows(database_url)
    before = rows(database_url)

    outcome, document = bench(database_url, *TINY, json_file=tmp_path / "out.json")

    assert outcome.exit_code == 0, outcome.output
    validate(document)
    assert [run["mode"] for run in document["runs"]] == ["sync", "async"]
    for run in document["runs"]:
        check_run(run)
        assert run["total"]["errors"] == 0, run["total"]["errors_by_kind"]
        assert run["total"]["ok"] > 0
        assert run["breakdown"]["pool"]["peak_in_use"] <= 4
    assert document["environment"]["database"]["pool_capacity"] == 4
    assert document["summary"][0]["ratio"]["label"] == "async/sync"
    cleanup = document["cleanup"]
    assert cleanup["removed_at_end"] == cleanup["created"] - cleanup["deleted_during_run"]
    assert rows(database_url) == before  # nothing of ours left, nothing of theirs changed
    assert f"created {cleanup['created']:,}" in outcome.stderr
    assert "async/sync" in outcome.stdout and "p99.9" in outcome.stdout


def test_keep_leaves_exactly_the_rows_it_reports(database_url: str, tmp_path) -> None:
    outcome, document = bench(
        database_url, *TINY, "--mode", "async", "--keep", json_file=tmp_path / "out.json"
    )
    assert outcome.exit_code == 0, outcome.output
    cleanup = document["cleanup"]
    kept = rows(database_url, cleanup["prefix"])
    assert len(kept) == cleanup["created"] - cleanup["deleted_during_run"] > 0
    assert "kept" in outcome.stderr


def test_request_budget_and_open_loop(database_url: str, tmp_path) -> None:
    outcome, document = bench(
        database_url, "--concurrency", "4", "--requests", "60", "--warmup", "0", "--quiet",
        "--rate", "300", "--arrival", "poisson", json_file=tmp_path / "out.json",
    )
    assert outcome.exit_code == 0, outcome.output
    validate(document)
    assert document["settings"]["load_model"] == "open"
    for run in document["runs"]:
        check_run(run)
        # Every scheduled request is accounted for: sent (ok/failed), skipped or dropped.
        assert run["total"]["count"] + run["skipped"] + run["dropped"] == 60
        assert run["late"] is not None and run["breakdown"]["queue_wait"] is not None


def test_database_down_fails_fast_with_one_line(tmp_path) -> None:
    outcome = invoke(
        "--url", "postgresql+asyncpg://nobody@127.0.0.1:1/none", "bench", *TINY,
    )
    assert outcome.exit_code == 3
    assert outcome.stderr.count("\n") == 1 and "unreachable" in outcome.stderr
    assert "Traceback" not in outcome.output


def test_thresholds_fail_with_exit_7(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    outcome, document = bench(
        url, *TINY, "--fail-if", "p99>0.001ms", "--fail-if", "errors>1000",
        "--fail-if", "async/sync<1000", json_file=tmp_path / "out.json",
    )
    assert outcome.exit_code == 7, outcome.output
    assert outcome.stderr.strip().splitlines()[-1].startswith("error: threshold broken: p99>0.001ms")
    broken = {check["expression"]: check["broken"] for check in document["thresholds"]}
    assert broken == {"p99>0.001ms": True, "errors>1000": False, "async/sync<1000": True}
    validate(document)

    kept = bench(url, *TINY, "--mode", "sync", "--fail-if", "sync.p99>100s")[0]
    assert kept.exit_code == 0, kept.output


@pytest.mark.parametrize(
    "args, words",
    [
        (("--fail-if", "latency is bad"), "--fail-if"),
        (("--fail-if", "async/sync<1", "--mode", "async"), "needs both modes"),
        (("--mix", "get=0"), "every weight is zero"),
        (("--mix", "fly=3"), "unknown operation"),
        (("--concurrency", "0"), "positive integer"),
        (("--duration", "soon"), "not a duration"),
        (("--url", "http://127.0.0.1:9"), "--target http"),
        (("--plot", "out.gif"), ".html or .png"),
        (("--client", "sequential"), "--target http"),
        (("--processes", "3", "--concurrency", "2"), "at least 3"),
    ],
)
def test_bad_options_are_one_line_exit_2(tmp_path, args, words) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    outcome = invoke("--url", url, "bench", *args)
    assert outcome.exit_code == 2, outcome.output
    assert outcome.stderr.count("\n") == 1 and words in outcome.stderr
    assert not (tmp_path / "b.db").exists()  # refused before touching the database


def test_sweep_with_repeats_interleaves_and_summarises(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    outcome, document = bench(
        url, "--concurrency", "2,4", "--duration", "0.4s", "--warmup", "0", "--repeat", "2",
        "--quiet", json_file=tmp_path / "out.json",
    )
    assert outcome.exit_code == 0, outcome.output
    validate(document)
    order = [(run["concurrency"], run["mode"]) for run in document["runs"]]
    assert order == [
        (2, "sync"), (2, "async"), (2, "async"), (2, "sync"),
        (4, "sync"), (4, "async"), (4, "async"), (4, "sync"),
    ]
    assert [entry["concurrency"] for entry in document["summary"]] == [2, 4]
    spread = document["summary"][0]["modes"]["sync"]["spread"]["throughput_rps"]
    assert spread["min"] <= document["summary"][0]["modes"]["sync"]["throughput_rps"] <= spread["max"]
    assert "Sweep" in outcome.stdout


def test_processes_merge_their_recordings(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    outcome, document = bench(
        url, *TINY, "--mode", "async", "--processes", "2", json_file=tmp_path / "out.json"
    )
    assert outcome.exit_code == 0, outcome.output
    validate(document)
    (run,) = document["runs"]
    assert run["processes"] == 2
    check_run(run)
    assert run["total"]["ok"] > 0
    assert rows(url) == []


def test_compare_prints_deltas_and_refuses_other_files(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert bench(url, *TINY, json_file=first)[0].exit_code == 0
    assert bench(url, *TINY, json_file=second)[0].exit_code == 0

    shown = invoke("bench", "compare", str(first), str(second))
    assert shown.exit_code == 0, shown.output
    assert "throughput_rps" in shown.stdout and "async/sync" in shown.stdout

    data = invoke("bench", "compare", str(first), str(second), "--json").json()
    metrics = {(row["mode"], row["metric"]) for row in data["rows"]}
    assert ("sync", "p99_ms") in metrics and ("async/sync", "throughput_rps") in metrics
    for row in data["rows"]:
        if row["before"] and row["after"] is not None:
            assert row["change"] == pytest.approx(row["after"] / row["before"] - 1)

    (tmp_path / "other.json").write_text('{"hello": 1}')
    refused = invoke("bench", "compare", str(first), str(tmp_path / "other.json"))
    assert refused.exit_code == 2 and "not a dmitems bench result" in refused.stderr


@pytest.mark.parametrize("suffix, module", [("html", "plotly"), ("png", "matplotlib")])
def test_plot_files(tmp_path, suffix, module) -> None:
    pytest.importorskip(module)
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    target = tmp_path / f"cdf.{suffix}"
    outcome = bench(url, *TINY, "--plot", str(target))[0]
    assert outcome.exit_code == 0, outcome.output
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == "png" else b"sync c=4" in data


def test_json_to_stdout_is_clean(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    outcome = invoke("--url", url, "bench", *TINY, "--mode", "sync", "--json", "-")
    assert outcome.exit_code == 0, outcome.output
    document = outcome.json()
    validate(document)
    assert "Where the time goes" in outcome.stderr
