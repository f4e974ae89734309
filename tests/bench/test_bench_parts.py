"""The benchmark's pure parts: parsing, the load plan, thresholds, recorder merging."""

from __future__ import annotations

import pytest

from dmitems.bench import thresholds
from dmitems.bench.load import Budget, Mix
from dmitems.bench.recorder import Recorder
from dmitems.bench.spec import DB_OPERATIONS, BenchSpec, parse_duration, parse_levels, parse_mix
from dmitems.errors import InvalidInput


def test_durations_levels_and_mix() -> None:
    assert parse_duration("10s") == 10 and parse_duration("500ms") == 0.5
    assert parse_duration("2m") == 120 and parse_duration("3") == 3
    assert parse_levels("10, 50,100") == [10, 50, 100]
    with pytest.raises(InvalidInput):
        parse_levels("10,10")
    assert parse_mix("get=3,list=0,create=1", DB_OPERATIONS) == {"get": 3, "create": 1}


def test_mix_picks_in_proportion() -> None:
    mix = Mix({"get": 3, "delete": 1}, seed=1)
    picks = [mix.pick() for _ in range(4000)]
    assert 0.7 < picks.count("get") / len(picks) < 0.8


def test_budget_counts_requests_exactly() -> None:
    budget = Budget(None, 3)
    assert [budget.take() for _ in range(5)] == [True, True, True, False, False]


def test_plan_alternates_which_mode_goes_first() -> None:
    spec = BenchSpec(levels=[5], repeat=3)
    assert [plan.mode for plan in spec.plan()] == ["sync", "async", "async", "sync", "sync", "async"]


def _run(mode: str, level: int, p99: float, rps: float, errors: int = 0) -> dict:
    stats = {"p99_ms": p99, "throughput_rps": rps, "errors": errors, "count": 100 + errors}
    return {"mode": mode, "concurrency": level, "total": stats, "operations": {"get": stats}}


def test_thresholds_parse_scope_units_and_ratios() -> None:
    modes, ops = ("sync", "async"), DB_OPERATIONS
    parsed = thresholds.parse("async.get.p99 >= 0.2s", modes, ops)
    assert (parsed.key, parsed.limit, parsed.modes, parsed.operation) == (
        "p99_ms", 200.0, ("async",), "get",
    )
    assert thresholds.parse("error_rate>1%", modes, ops).limit == pytest.approx(0.01)
    assert thresholds.parse("async/sync<1.0", modes, ops).ratio == ("async", "sync")
    for bad in ("p99>2%", "rps>5ms", "p42>1ms", "db.p99>1ms", "async/async<1"):
        with pytest.raises(InvalidInput):
            thresholds.parse(bad, modes, ops)


def test_thresholds_evaluate_per_level_and_mode() -> None:
    runs = [_run("sync", 10, 5, 100), _run("async", 10, 50, 150),
            _run("sync", 50, 8, 100), _run("async", 50, 80, 90)]
    modes, ops = ("sync", "async"), DB_OPERATIONS
    p99 = thresholds.evaluate(thresholds.parse("p99>40ms", modes, ops), runs)
    assert p99["broken"] and p99["where"] == [
        "async at concurrency 10: 50.00 ms", "async at concurrency 50: 80.00 ms"
    ]
    ratio = thresholds.evaluate(thresholds.parse("async/sync<1.0", modes, ops), runs)
    assert ratio["where"] == ["async/sync at concurrency 50 = 0.900"]
    fine = thresholds.evaluate(thresholds.parse("sync.p99>10ms", modes, ops), runs)
    assert fine == {"expression": "sync.p99>10ms", "broken": False, "where": []}


def test_recorders_merge_across_processes() -> None:
    first, second = Recorder(("get", "list")), Recorder(("get", "list"))
    for recorder, latency in ((first, 0.001), (second, 0.004)):
        for _ in range(10):
            recorder.begin("get", 0.0, 0.0, None)
            recorder.success("get", recorder.started, recorder.started + latency, None)
        recorder.begin("list", 0.0, 0.0, None)
        recorder.failure("list", "timeout", recorder.started)
        recorder.close()
    merged = Recorder(("get", "list"))
    merged.finished = merged.started
    merged.absorb(first.snapshot())
    merged.absorb(second.snapshot())
    stats = merged.stats()
    assert (stats["count"], stats["ok"], stats["errors"]) == (22, 20, 2)
    assert stats["errors_by_kind"] == {"timeout": 2}
    assert stats["p50_ms"] == pytest.approx(1.0, rel=0.01)
    assert stats["max_ms"] == pytest.approx(4.0, rel=0.01)


def test_unfinished_requests_count_as_errors_of_their_operation() -> None:
    recorder = Recorder(("get",))
    recorder.begin("get", 0.0, 0.0, None)
    recorder.close()
    recorder.success("get", recorder.started, recorder.started + 1, None)  # too late: ignored
    assert recorder.stats("get")["errors_by_kind"] == {"unfinished": 1}
    assert recorder.stats()["ok"] == 0
