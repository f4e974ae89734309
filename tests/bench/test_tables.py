"""Every bench table is whole at 80 columns (and at 120): no cell is cut with "…"."""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest

from tests.bench.helpers import bench

WIDTHS = (80, 120)


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> dict[str, Any]:
    """A real sweep (two pool sizes, two repeats, open loop), then its figures made as wide
    as they get: five-digit latencies, six-digit rates, seven-digit counts, long error names."""
    folder = tmp_path_factory.mktemp("tables")
    url = f"sqlite+aiosqlite:///{folder / 'b.db'}"
    outcome, found = bench(
        url, "--pool-size", "1,40", "--concurrency", "2,6", "--repeat", "2",
        "--duration", "0.5s", "--warmup", "0", "--rate", "200", "--quiet",
        json_file=folder / "out.json",
    )
    assert outcome.exit_code == 0, outcome.output
    return widen(found)


def widen(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        widened = {k: widen(v, k) for k, v in value.items()}
        if "errors_by_kind" in widened:
            widened["errors_by_kind"] = {"http_503": 1_234_567, "disconnected": 89_012,
                                         "ConnectionResetError": 3}
        return widened
    if isinstance(value, list):
        return [widen(item, key) for item in value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if key.endswith("_ms"):
        return 98_765.432
    if key in ("throughput_rps", "best_throughput_rps"):
        return 123_456.78
    if key in ("count", "ok", "errors", "late", "dropped", "skipped", "connections_opened",
               "checkouts", "peak_in_use"):
        return 9_876_543
    return value


def rendered(renderable: Any, width: int) -> str:
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=width, color_system=None, legacy_windows=False).print(renderable)
    return out.getvalue()


def every_table(document: dict[str, Any]) -> list[Any]:
    from dmitems.bench import advice_report, report

    tables = [report.fairness_table(document), report.main_table(document),
              report.sweep_table(document), *report.operations_tables(document),
              report.time_table(document), report.pool_table(document),
              *advice_report.advice_renderables(document)]
    return tables


@pytest.mark.parametrize("width", WIDTHS)
def test_no_table_cuts_a_cell(document, width) -> None:
    from dmitems.bench import report

    tables = every_table(document) + [report.histogram_panel(document, width)]
    assert len(tables) > 12
    for table in tables:
        text = rendered(table, width)
        assert "…" not in text, text
        assert max(len(line) for line in text.splitlines()) <= width
    assert "98,765" in rendered(report.time_table(document), width)


@pytest.mark.parametrize("width", WIDTHS)
def test_whole_report_and_comparison_fit(document, width) -> None:
    from dmitems.bench import report
    from dmitems.bench.results import compare

    text = rendered_report(document, width)
    assert "…" not in text
    for heading in ("What is compared", "Sweep", "by pool size", "Where the time goes",
                    "Pool and process", "Latency distribution"):
        assert heading in text
    later = copy.deepcopy(document)
    later["summary"][0]["modes"]["sync"]["p99_ms"] = 1.5
    table = report.compare_table(compare(document, later), "a-long-name-before.json",
                                 "a-long-name-after.json")
    assert "…" not in rendered(table, width)
    from dmitems.bench.advice_report import advice_compare_table
    from dmitems.bench.results import compare_advice

    picks = advice_compare_table(compare_advice(document, later))
    assert "…" not in rendered(picks, width) and "Recommended" in rendered(picks, width)


def rendered_report(document: dict[str, Any], width: int) -> str:
    from rich.console import Console

    from dmitems.bench.report import render

    out = io.StringIO()
    render(Console(file=out, width=width, color_system=None), document)
    return out.getvalue()
