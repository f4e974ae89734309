"""The pool-size advisor: the rule as a pure function, the server limit, and a real sweep."""

from __future__ import annotations

import asyncio

import pytest

from dmitems.bench.advisor import (
    Point,
    compare_modes,
    largest_allowed,
    recommend,
    server_connection_limit,
)
from dmitems.config import load_settings
from tests.bench.helpers import bench, validate
from tests.cli_runner import invoke


def points(*rows: tuple) -> list[Point]:
    """(pool size, req/s, p99 ms[, req/s spread, p99 spread])."""
    return [Point(*row) for row in rows]


RULE_CASES = [
    # name, points, limit, outcome, pool size, sizes within the noise
    ("throughput levels off: the smallest size at 95 % of the best",
     points((5, 500, 40), (10, 960, 21), (20, 1000, 20), (40, 1000, 20)), None,
     "recommend", 10, []),
    ("more throughput but p99 over 10 % above the best: the next size",
     points((5, 990, 30), (10, 1000, 20)), None, "recommend", 10, []),
    ("exactly 95 % and exactly +10 % still pass",
     points((5, 950, 22), (10, 1000, 20)), None, "recommend", 5, []),
    ("a tie on every figure: the smallest size",
     points((5, 1000, 20), (10, 1000, 20), (20, 1000, 20)), None, "recommend", 5, []),
    ("a tie between two best sizes, the smaller one wins",
     points((5, 800, 20), (10, 1000, 20), (20, 1000, 20)), None, "recommend", 10, []),
    ("one size only",
     points((20, 1000, 20),), None, "recommend", 20, []),
    ("bigger pools only hurt: the smallest",
     points((5, 1000, 20), (10, 900, 25), (20, 700, 40)), None, "recommend", 5, []),
    ("no size has both the throughput and the p99",
     points((5, 1000, 30), (10, 700, 20)), None, "none", None, []),
    ("a smaller size misses by less than the spread: too close to call",
     points((5, 930, 20, 0.05, 0.05), (10, 1000, 20, 0.05, 0.05)), None,
     "too_close", 10, [5]),
    ("the pick passes by less than the spread: too close to call",
     points((5, 500, 20, 0.1, 0.1), (10, 970, 20, 0.1, 0.1), (20, 1000, 20, 0.1, 0.1)), None,
     "too_close", 10, [10]),
    ("everything within the spread of --repeat: too close to call",
     points((5, 980, 20, 0.2, 0.2), (10, 1000, 21, 0.2, 0.2)), None,
     "too_close", 5, [5]),
    ("clear differences survive a small spread",
     points((5, 500, 40, 0.02, 0.02), (10, 1000, 20, 0.02, 0.02), (20, 1000, 20, 0.02, 0.02)),
     None, "recommend", 10, []),
    ("never above the server's limit",
     points((5, 500, 40), (10, 800, 30), (20, 1000, 20), (40, 1000, 20)), 10,
     "recommend", 10, []),
    ("every size over the limit",
     points((20, 1000, 20), (40, 1000, 20)), 10, "over_limit", None, []),
]


@pytest.mark.parametrize(
    "found, limit, outcome, size, close", [case[1:] for case in RULE_CASES],
    ids=[case[0] for case in RULE_CASES],
)
def test_recommendation_rule(found, limit, outcome, size, close) -> None:
    advice = recommend(found, limit)
    assert (advice.outcome, advice.pool_size, advice.close_sizes) == (outcome, size, close)
    if limit is not None:
        assert advice.over_limit == [p.pool_size for p in found if p.pool_size > limit]


def test_the_best_figures_come_from_the_allowed_sizes_only() -> None:
    advice = recommend(points((5, 500, 40), (10, 800, 30), (20, 1000, 20)), limit=10)
    assert (advice.best_throughput_rps, advice.best_p99_ms) == (800, 30)
    assert advice.measured_noise is False and advice.noise == 0


COMPARISONS = [
    ("async ahead by more than the spread", (1200, 0.05), (1000, 0.05), "wins", "async", 0.2),
    ("sync ahead", (900, None), (1000, None), "wins", "sync", 1000 / 900 - 1),
    ("ahead by less than the spread", (1030, 0.05), (1000, 0.04), "too_close", None, 0.03),
    ("a tie", (1000, None), (1000, None), "tie", None, 0.0),
]


@pytest.mark.parametrize(
    "async_, sync, outcome, winner, gain", [case[1:] for case in COMPARISONS],
    ids=[case[0] for case in COMPARISONS],
)
def test_which_mode_wins(async_, sync, outcome, winner, gain) -> None:
    found = compare_modes({
        "sync": Point(20, sync[0], 10, sync[1]),
        "async": Point(20, async_[0], 10, async_[1]),
    })
    assert (found["outcome"], found["winner"]) == (outcome, winner)
    assert found["throughput_gain"] == pytest.approx(gain)


@pytest.mark.parametrize(
    "usable, workers, overflow, largest",
    [(97, 1, 0, 97), (97, 4, 0, 24), (97, 4, 4, 20), (None, 4, 0, None)],
)
def test_largest_pool_for_the_configured_workers(usable, workers, overflow, largest) -> None:
    assert largest_allowed(usable, workers, overflow) == largest


def test_server_limit_is_read_from_postgresql(pg_url: str) -> None:
    settings = load_settings(flags={
        "database_url": pg_url, "server_workers": 4, "database_max_overflow": 2,
    })
    limit = asyncio.run(server_connection_limit(settings))
    assert limit["source"] == "max_connections - superuser_reserved_connections"
    assert limit["usable_connections"] > 0
    assert limit["largest_pool_size"] == limit["usable_connections"] // 4 - 2


def test_sqlite_has_no_server_limit(tmp_path) -> None:
    settings = load_settings(flags={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"})
    limit = asyncio.run(server_connection_limit(settings))
    assert limit["largest_pool_size"] is None and limit["usable_connections"] is None


def test_pool_size_sweep_recommends_and_compares(database_url: str, tmp_path) -> None:
    outcome, document = bench(
        database_url, "--pool-size", "1,4", "--concurrency", "6", "--duration", "0.4s",
        "--warmup", "0", "--quiet", json_file=tmp_path / "out.json",
    )
    assert outcome.exit_code == 0, outcome.output
    validate(document)
    order = [(run["pool_size"], run["mode"]) for run in document["runs"]]
    assert order == [(1, "sync"), (1, "async"), (4, "sync"), (4, "async")]
    for run in document["runs"]:
        assert run["breakdown"]["pool"]["peak_in_use"] <= run["pool_size"]
    assert [(e["concurrency"], e["pool_size"]) for e in document["summary"]] == [(6, 1), (6, 4)]
    (level,) = document["advice"]["levels"]
    assert set(level["modes"]) == {"sync", "async"}
    for mode, advice in level["modes"].items():
        found = recommend([
            Point(e["pool_size"], e["modes"][mode]["throughput_rps"], e["modes"][mode]["p99_ms"])
            for e in document["summary"]
        ])
        assert (advice["outcome"], advice["pool_size"]) == (found.outcome, found.pool_size)
        assert f"{mode}: " in outcome.stdout
    assert "Server limit" in outcome.stdout
    assert document["advice"]["limit"]["largest_pool_size"] is not None or "sqlite" in database_url

    compared = invoke("bench", "compare", str(tmp_path / "out.json"), str(tmp_path / "out.json"),
                      "--json").json()
    assert {row["pool_size"] for row in compared["rows"]} == {1, 4}
    picks = {row["mode"]: (row["before"], row["after"]) for row in compared["advice"]}
    for mode, advice in level["modes"].items():
        expected = advice["pool_size"] if advice["outcome"] == "recommend" else advice["outcome"]
        assert picks[mode] == (expected, expected)
    shown = invoke("bench", "compare", str(tmp_path / "out.json"), str(tmp_path / "out.json"))
    assert "Recommended pool_size" in shown.stdout


def test_pool_size_list_needs_the_database_target(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    outcome = invoke("--url", url, "bench", "--pool-size", "5,10", "--target", "http")
    assert outcome.exit_code == 2 and "--target db" in outcome.stderr
    outcome = invoke("--url", url, "bench", "--pool-size", "5,x")
    assert outcome.exit_code == 2 and "--pool-size '5,x'" in outcome.stderr
