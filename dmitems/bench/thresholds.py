"""``--fail-if`` conditions, as in k6: when one holds, the run fails (exit code 7).

Grammar (spaces optional)::

    [MODE.][OPERATION.]METRIC OP NUMBER[UNIT]     p99>200ms   async.get.p99>=50ms   errors>0
    A/B[.METRIC] OP NUMBER                        async/sync<1.0   async/sync.p99>1.5

METRIC: p50 p90 p95 p99 p99.9 mean stdev min max (latency; unit us, ms or s,
default ms), rps (successful requests per second), errors (a count),
error_rate (a fraction, or a percentage with %).  A/B is the ratio of mode A's
figure to mode B's, throughput unless a METRIC is given.  Each condition is
checked at every concurrency level (on the median over ``--repeat``) and for
every mode unless one is named.
"""

from __future__ import annotations

import operator
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dmitems.errors import InvalidInput

_METRIC = r"p\d+(?:\.\d+)?|mean|stdev|min|max|rps|throughput|errors|error_rate"
_OP = r">=|<=|==|>|<"
_PLAIN = re.compile(
    rf"^(?:(?P<scope>[a-z]+(?:\.[a-z]+)?)\.)?(?P<metric>{_METRIC})\s*(?P<op>{_OP})\s*"
    r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>us|ms|s|%)?$"
)
_RATIO = re.compile(
    rf"^(?P<top>[a-z]+)/(?P<bottom>[a-z]+)(?:\.(?P<metric>{_METRIC}))?\s*(?P<op>{_OP})\s*"
    r"(?P<value>\d+(?:\.\d+)?)$"
)
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
}
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, None: 1.0}
_LATENCY = {"mean", "stdev", "min", "max"}


def _key(metric: str) -> str:
    if metric in ("rps", "throughput"):
        return "throughput_rps"
    if metric in ("errors", "error_rate"):
        return metric
    if metric in _LATENCY:
        return f"{metric}_ms"
    return metric.replace(".", "_") + "_ms"


@dataclass(frozen=True)
class Threshold:
    text: str
    key: str
    op: str
    limit: float
    modes: tuple[str, ...] | None = None
    operation: str | None = None
    ratio: tuple[str, str] | None = None


def parse(text: str, modes: tuple[str, ...], operations: tuple[str, ...]) -> Threshold:
    """One condition, checked against what this benchmark will run."""
    compact = text.strip().lower()
    ratio = _RATIO.match(compact)
    if ratio:
        pair = (ratio["top"], ratio["bottom"])
        if not set(pair) <= set(modes) or pair[0] == pair[1]:
            raise InvalidInput(
                f"--fail-if '{text}': {pair[0]}/{pair[1]} needs both modes in this run "
                f"(running: {', '.join(modes)})"
            )
        return Threshold(
            text, _key(ratio["metric"] or "rps"), ratio["op"], float(ratio["value"]), ratio=pair
        )
    plain = _PLAIN.match(compact)
    if plain is None:
        raise InvalidInput(
            f"--fail-if '{text}': expected e.g. p99>200ms, async.rps<500, errors>0 or async/sync<1.0"
        )
    key = _key(plain["metric"])
    if key.endswith("_ms") and key != "mean_ms" and plain["metric"].startswith("p"):
        percentile = float(plain["metric"][1:])
        if not 0 < percentile <= 100:
            raise InvalidInput(f"--fail-if '{text}': percentile must be between 0 and 100")
        if key not in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms"):
            raise InvalidInput(f"--fail-if '{text}': use p50, p90, p95, p99 or p99.9")
    limit = float(plain["value"])
    unit = plain["unit"]
    if key.endswith("_ms"):
        if unit == "%":
            raise InvalidInput(f"--fail-if '{text}': a latency takes us, ms or s")
        limit *= _UNIT_MS[unit]
    elif key == "error_rate" and unit == "%":
        limit /= 100
    elif unit is not None:
        raise InvalidInput(f"--fail-if '{text}': {plain['metric']} takes no unit")
    chosen_modes: tuple[str, ...] | None = None
    operation = None
    for part in (plain["scope"] or "").split(".") if plain["scope"] else []:
        if part in modes:
            chosen_modes = (part,)
        elif part in operations:
            operation = part
        else:
            raise InvalidInput(
                f"--fail-if '{text}': '{part}' is neither a mode ({', '.join(modes)}) "
                f"nor an operation ({', '.join(operations)})"
            )
    return Threshold(text, key, plain["op"], limit, chosen_modes, operation)


def _figure(runs: list[dict[str, Any]], key: str, operation: str | None) -> float | None:
    values = []
    for run in runs:
        stats = run["operations"][operation] if operation else run["total"]
        if key == "error_rate":
            value = stats["errors"] / stats["count"] if stats["count"] else None
        else:
            value = stats[key]
        if value is not None:
            values.append(value)
    return statistics.median(values) if values else None


def _show(key: str, value: float) -> str:
    if key.endswith("_ms"):
        return f"{value:.2f} ms"
    if key == "error_rate":
        return f"{value:.2%}"
    return f"{value:.3g}" if key != "errors" else str(int(value))


def evaluate(threshold: Threshold, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether the condition holds anywhere, and where."""
    check = _OPERATORS[threshold.op]
    broken: list[str] = []
    levels = sorted({run["concurrency"] for run in runs})
    for level in levels:
        at = [run for run in runs if run["concurrency"] == level]

        def figure(mode: str) -> float | None:
            chosen = [run for run in at if run["mode"] == mode]
            return _figure(chosen, threshold.key, threshold.operation) if chosen else None

        if threshold.ratio is not None:
            top, bottom = figure(threshold.ratio[0]), figure(threshold.ratio[1])
            label = f"{threshold.ratio[0]}/{threshold.ratio[1]} at concurrency {level}"
            if top is None or bottom is None or bottom == 0:
                broken.append(f"{label}: no figure to compare")
            elif check(top / bottom, threshold.limit):
                broken.append(f"{label} = {top / bottom:.3f}")
            continue
        modes = threshold.modes or tuple(dict.fromkeys(run["mode"] for run in at))
        for mode in modes:
            value = figure(mode)
            label = f"{mode} at concurrency {level}"
            if value is None:
                broken.append(f"{label}: no successful request to measure")
            elif check(value, threshold.limit):
                broken.append(f"{label}: {_show(threshold.key, value)}")
    return {"expression": threshold.text, "broken": bool(broken), "where": broken}
