"""Showing a pool-size sweep's advice: a table per mode, a recommendation line per mode,
and one sentence on which mode wins (see :mod:`dmitems.bench.advisor` for the rule)."""

from __future__ import annotations

from typing import Any

from dmitems.bench.report import column, number, table

OUTCOME_MARKS = {"recommend": "← recommended", "too_close": "too close to call"}


def advice_renderables(document: dict[str, Any]) -> list[Any]:
    """Nothing unless the run swept pool sizes."""
    advice = document.get("advice")
    if not advice:
        return []
    shown: list[Any] = []
    for level in advice["levels"]:
        for mode, found in level["modes"].items():
            shown.append(mode_table(document, level["concurrency"], mode, found))
        shown.extend(lines(level, advice))
    return shown


def mode_table(document: dict[str, Any], concurrency: int, mode: str, found: dict[str, Any]) -> Any:
    result = table(f"{mode} · concurrency {concurrency}: by pool size (medians, ms)")
    for heading in ("pool", "req/s", "p50", "p99", "pool wait p99", ""):
        column(result, heading, left=heading == "")
    for entry in document["summary"]:
        figures = entry["modes"].get(mode)
        if entry["concurrency"] != concurrency or figures is None:
            continue
        size = entry["pool_size"]
        note = ""
        if size in found["over_limit"]:
            note = "over the server's limit"
        elif size == found["pool_size"] and found["outcome"] == "recommend":
            note = OUTCOME_MARKS["recommend"]
        elif size in found["close_sizes"]:
            note = "within the noise"
        result.add_row(str(size), number(figures.get("throughput_rps"), 1),
                       number(figures.get("p50_ms")), number(figures.get("p99_ms")),
                       number(figures.get("pool_wait_p99_ms")), note)
    return result


def recommendation_line(mode: str, found: dict[str, Any], rule: dict[str, Any]) -> str:
    """One sentence per mode: the pool size the rule picks, or why none."""
    share, allowance = f"{rule['throughput_share']:.0%}", f"{rule['p99_allowance']:.0%}"
    noise = (f"run-to-run spread up to {found['noise']:.0%}" if found["measured_noise"]
             else "one run per size, no spread measured (--repeat 3 measures it)")
    outcome = found["outcome"]
    if outcome == "recommend":
        return (f"{mode}: pool_size {found['pool_size']} — the smallest that reaches {share} of "
                f"the best throughput ({number(found['best_throughput_rps'], 1)} req/s) with "
                f"p99 at most {allowance} above the best ({number(found['best_p99_ms'])} ms); "
                f"{noise}.")
    if outcome == "too_close":
        sizes = ", ".join(map(str, found["close_sizes"]))
        return (f"{mode}: too close to call — pool size {sizes} passes or fails the rule by "
                f"less than the {noise}; run with more --repeat or a longer --duration.")
    if outcome == "over_limit":
        return f"{mode}: no recommendation — every pool size swept is over the server's limit."
    return (f"{mode}: no pool size reaches {share} of the best throughput with p99 at most "
            f"{allowance} above the best; {noise}.")


def comparison_line(comparison: dict[str, Any] | None) -> str | None:
    """Which mode wins at the recommended size, by how much, or too close to call."""
    if comparison is None:
        return None
    size, faster, slower = comparison["pool_size"], comparison["faster"], comparison["slower"]
    rps, p99 = comparison["throughput_rps"], comparison["p99_ms"]
    figures = (f"{number(rps[faster], 1)} against {number(rps[slower], 1)} req/s, p99 "
               f"{number(p99[faster])} against {number(p99[slower])} ms")
    if comparison["outcome"] == "wins":
        return (f"At pool_size {size}, {faster} wins by {comparison['throughput_gain']:.0%} "
                f"in throughput ({figures}).")
    if comparison["outcome"] == "too_close":
        return (f"At pool_size {size}, {faster} and {slower} are too close to call: "
                f"{comparison['throughput_gain']:.0%} apart in throughput, within the "
                f"run-to-run spread of {comparison['noise']:.0%} ({figures}).")
    return f"At pool_size {size}, sync and async give the same throughput ({figures})."


def advice_compare_table(rows: list[dict[str, Any]]) -> Any:
    """The recommended pool size per level and mode, before and after."""
    result = table("Recommended pool_size (see the advice in each file)")
    for heading in ("concurrency", "mode", "before", "after"):
        column(result, heading, left=heading == "mode")
    for row in rows:
        result.add_row(str(row["concurrency"]), row["mode"],
                       *(str(row[key]).replace("_", " ") for key in ("before", "after")))
    return result


def lines(level: dict[str, Any], advice: dict[str, Any]) -> list[str]:
    found = [recommendation_line(mode, each, advice["rule"]) for mode, each in level["modes"].items()]
    sentence = comparison_line(level["comparison"])
    limit = advice["limit"]
    if limit.get("largest_pool_size") is not None:
        found.append(
            f"Server limit: {limit['usable_connections']} connections ({limit['source']}) for "
            f"{limit['server_workers']} worker(s) and max_overflow {limit['max_overflow']}: "
            f"pool_size at most {limit['largest_pool_size']}."
        )
    else:
        found.append("Server limit: not checked (this database reports none that dmitems reads).")
    return [*found, *([sentence] if sentence else [])]
