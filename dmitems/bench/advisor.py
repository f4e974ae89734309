"""The pool-size advisor: which pool size, and which mode, this database and load need.

``dmitems bench --pool-size 5,10,20,40`` runs every pool size in both modes.
For each mode (and concurrency level) the rule here picks:

    the smallest pool size whose throughput is at least 95 % of that mode's
    best, and whose p99 is at most 10 % above that mode's best (lowest) p99.

Then the modes are compared at the larger of their two picks, both having
been measured there: the one with more throughput wins, by that margin.

Noise: with ``--repeat`` every figure is a median, and its spread (max - min
over the median) says how far one run lands from the next.  A decision that
a spread of that size could flip is not made: when a pool size passes or
fails the rule by less than the spread, the advisor says "too close to call"
instead of recommending; when the modes differ by less than their spread,
it says so instead of naming a winner.  With one run per size there is no
spread to go by, and the output says so.

Limit: a pool size whose connections, times the server's worker processes,
exceed what the database server allows (PostgreSQL ``max_connections`` minus
its superuser reserve; DM ``MAX_SESSIONS``) is never suggested.

Everything above is pure (:func:`recommend`, :func:`compare_modes`,
:func:`largest_allowed`); only :func:`server_connection_limit` reads the server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dmitems.config import Settings

THROUGHPUT_SHARE = 0.95  # of the best throughput
P99_ALLOWANCE = 0.10  # above the best p99


@dataclass(frozen=True)
class Point:
    """One mode at one pool size: median figures and their relative spread (None: 1 run)."""

    pool_size: int
    throughput_rps: float
    p99_ms: float
    throughput_spread: float | None = None
    p99_spread: float | None = None


@dataclass
class Advice:
    """What the rule found for one mode."""

    outcome: str  # "recommend", "too_close", "none" (no size meets the rule), "over_limit"
    pool_size: int | None = None
    best_throughput_rps: float | None = None
    best_p99_ms: float | None = None
    noise: float = 0.0  # the largest relative spread among the sizes considered
    measured_noise: bool = False
    close_sizes: list[int] = field(default_factory=list)  # sizes a spread could flip
    over_limit: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def largest_allowed(
    usable_connections: int | None, workers: int, max_overflow: int
) -> int | None:
    """The largest pool_size the server allows for ``workers`` processes, None if unknown."""
    if usable_connections is None:
        return None
    return usable_connections // max(1, workers) - max_overflow


def _noise(points: list[Point]) -> tuple[float, bool]:
    spreads = [
        spread for point in points for spread in (point.throughput_spread, point.p99_spread)
        if spread is not None
    ]
    return (max(spreads) if spreads else 0.0), bool(spreads)


def recommend(points: list[Point], limit: int | None = None) -> Advice:
    """The documented rule for one mode (see the module docstring)."""
    over = sorted(point.pool_size for point in points if limit is not None and point.pool_size > limit)
    candidates = sorted(
        (point for point in points if point.pool_size not in over), key=lambda p: p.pool_size
    )
    if not candidates:
        return Advice("over_limit", over_limit=over)
    best_rps = max(point.throughput_rps for point in candidates)
    best_p99 = min(point.p99_ms for point in candidates)
    noise, measured = _noise(candidates)
    advice = Advice("none", None, best_rps, best_p99, noise, measured, over_limit=over)

    def margin(point: Point) -> float:
        """How far the point is inside the rule (>= 0: passes), as a share of the best.

        A figure that is itself the best compares with nothing else, so no spread can
        move it across its threshold: it does not count towards the margin."""
        rps = p99 = math.inf
        if point.throughput_rps != best_rps:
            rps = point.throughput_rps / best_rps - THROUGHPUT_SHARE
        if point.p99_ms != best_p99:
            p99 = (1 + P99_ALLOWANCE) - point.p99_ms / best_p99
        return min(rps, p99)

    for point in candidates:
        if margin(point) >= 0:
            advice.outcome, advice.pool_size = "recommend", point.pool_size
            break
    decided = advice.pool_size if advice.pool_size is not None else candidates[-1].pool_size
    advice.close_sizes = [
        point.pool_size for point in candidates
        if point.pool_size <= decided and noise and abs(margin(point)) < noise
    ]
    if advice.close_sizes:
        advice.outcome = "too_close"
    return advice


def compare_modes(points: dict[str, Point]) -> dict[str, Any]:
    """Which mode gives more throughput at one pool size, by how much, or too close to call."""
    (name_a, a), (name_b, b) = sorted(points.items(), key=lambda item: -item[1].throughput_rps)
    spreads = [s for s in (a.throughput_spread, b.throughput_spread) if s is not None]
    noise = max(spreads) if spreads else 0.0
    gain = a.throughput_rps / b.throughput_rps - 1 if b.throughput_rps else None
    if gain is None or gain == 0:
        outcome, winner = "tie", None
    elif gain <= noise:
        outcome, winner = "too_close", None
    else:
        outcome, winner = "wins", name_a
    return {
        "pool_size": a.pool_size,
        "outcome": outcome,
        "winner": winner,
        "faster": name_a,
        "slower": name_b,
        "throughput_gain": gain,
        "noise": noise,
        "throughput_rps": {name_a: a.throughput_rps, name_b: b.throughput_rps},
        "p99_ms": {name_a: a.p99_ms, name_b: b.p99_ms},
    }


# -- from the result document --------------------------------------------------------


def _point(entry: dict[str, Any], mode: str) -> Point | None:
    figures = entry["modes"].get(mode)
    if not figures or figures.get("throughput_rps") is None or figures.get("p99_ms") is None:
        return None
    spread = figures.get("spread") or {}

    def relative(key: str) -> float | None:
        return (spread.get(key) or {}).get("relative")

    return Point(entry["pool_size"], figures["throughput_rps"], figures["p99_ms"],
                 relative("throughput_rps"), relative("p99_ms"))


def advise(summary: list[dict[str, Any]], modes: list[str], limit: dict[str, Any]) -> list[dict[str, Any]]:
    """The advice for each concurrency level of a pool-size sweep, for the result document."""
    levels = sorted({entry["concurrency"] for entry in summary})
    found = []
    for level in levels:
        entries = [entry for entry in summary if entry["concurrency"] == level]
        by_mode: dict[str, Advice] = {}
        for mode in modes:
            points = [p for p in (_point(entry, mode) for entry in entries) if p is not None]
            if points:
                by_mode[mode] = recommend(points, limit.get("largest_pool_size"))
        chosen = [a.pool_size for a in by_mode.values() if a.outcome == "recommend"]
        comparison = None
        if len(by_mode) == 2 and chosen:
            size = max(p for p in chosen if p is not None)
            entry = next(e for e in entries if e["pool_size"] == size)
            points = {mode: _point(entry, mode) for mode in by_mode}
            if all(points.values()):
                comparison = compare_modes(points)  # type: ignore[arg-type]
        found.append({
            "concurrency": level,
            "modes": {mode: advice.as_dict() for mode, advice in by_mode.items()},
            "comparison": comparison,
        })
    return found


# -- the server's limit (the one part that does I/O) ---------------------------------


async def server_connection_limit(settings: Settings) -> dict[str, Any]:
    """Connections the server allows dmitems, read as ``doctor`` reads them, and the largest
    pool_size that fits ``server.workers`` processes; unknown (None) where not readable."""
    from sqlalchemy import text

    from dmitems.db import Database

    database = Database(settings)
    usable: int | None = None
    source = None
    try:
        async with database.connect() as connection:
            if database.backend.name == "postgresql":
                total = int((await connection.execute(text("SHOW max_connections"))).scalar() or 0)
                reserved = int((await connection.execute(
                    text("SHOW superuser_reserved_connections"))).scalar() or 0)
                usable, source = total - reserved, "max_connections - superuser_reserved_connections"
            elif database.backend.name == "dm":
                usable, source = await _dm_max_sessions(connection), "MAX_SESSIONS"
    finally:
        await database.dispose()
    workers = settings.server_workers
    return {
        "usable_connections": usable,
        "source": source if usable is not None else None,
        "server_workers": workers,
        "max_overflow": settings.database_max_overflow,
        "largest_pool_size": largest_allowed(usable, workers, settings.database_max_overflow),
    }


async def _dm_max_sessions(connection: Any) -> int | None:
    from sqlalchemy import text

    try:
        value = (await connection.execute(text(
            "SELECT PARA_VALUE FROM V$DM_INI WHERE PARA_NAME = 'MAX_SESSIONS'"
        ))).scalar()
        return int(value) if value is not None else None
    except Exception:  # noqa: BLE001 - an unreadable setting means "not checked", never a failure
        return None
