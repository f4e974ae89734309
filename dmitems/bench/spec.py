"""What a benchmark run is asked to do, parsed from the command line's text.

Everything here is pure: parsing and validation of durations, concurrency
levels, operation mixes and the run plan.  Bad input raises
:class:`~dmitems.errors.InvalidInput` with a one-line message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from dmitems.errors import InvalidInput

TARGETS = ("db", "http")
MODES = ("sync", "async")
DB_OPERATIONS = ("get", "list", "create", "update", "delete")
# ``livez`` reaches no database: it measures the HTTP stack and the client alone,
# which is what benchmarks/bench_overhead.sh compares against ``hey``.
HTTP_OPERATIONS = (*DB_OPERATIONS, "livez")
DEFAULT_MIX = "get=70,list=10,create=10,update=5,delete=5"
LIST_PAGE = 20

Arrival = Literal["constant", "poisson"]
Client = Literal["concurrent", "sequential"]

_DURATION = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|min|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, what: str = "duration") -> float:
    """``10s``, ``500ms``, ``2m`` or a bare number of seconds, in seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise InvalidInput(f"{what} '{text}' is not a duration such as 10s, 500ms or 2m")
    return float(match["number"]) * _UNIT_SECONDS[match["unit"]]


def parse_levels(text: str) -> list[int]:
    """``100`` or ``10,50,100``: the concurrency levels to sweep, in the order given."""
    levels = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise InvalidInput(
                f"concurrency '{text}' must be a positive integer or a list such as 10,50,100"
            )
        levels.append(int(part))
    if len(set(levels)) != len(levels):
        raise InvalidInput(f"concurrency '{text}' lists a level twice")
    return levels


def parse_pool_sizes(text: str) -> list[int]:
    """``20`` or ``5,10,20,40``: the pool sizes to sweep, smallest first."""
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= 1000:
            raise InvalidInput(
                f"--pool-size '{text}' must be a whole number from 1 to 1000, or a list such "
                "as 5,10,20,40"
            )
        sizes.append(int(part))
    if len(set(sizes)) != len(sizes):
        raise InvalidInput(f"--pool-size '{text}' lists a size twice")
    return sorted(sizes)


def parse_mix(text: str, allowed: tuple[str, ...]) -> dict[str, int]:
    """``get=70,list=10,...`` as {operation: weight}; weights are relative, not percentages."""
    mix: dict[str, int] = {}
    for part in text.split(","):
        name, sep, weight = part.partition("=")
        name = name.strip().lower()
        if not sep or not weight.strip().isdigit():
            raise InvalidInput(f"mix '{text}': expected name=weight pairs such as get=70,list=30")
        if name not in allowed:
            raise InvalidInput(f"mix '{text}': unknown operation '{name}' (use {', '.join(allowed)})")
        if name in mix:
            raise InvalidInput(f"mix '{text}': '{name}' appears twice")
        mix[name] = int(weight)
    mix = {name: weight for name, weight in mix.items() if weight > 0}
    if not mix:
        raise InvalidInput(f"mix '{text}': every weight is zero")
    return mix


@dataclass(frozen=True)
class RunPlan:
    """One measured run: a mode at a concurrency level and pool size (one repeat of it)."""

    mode: str
    concurrency: int
    repeat: int
    index: int
    pool_size: int = 20


@dataclass
class BenchSpec:
    """The whole benchmark, as asked for."""

    target: str = "db"
    modes: tuple[str, ...] = MODES
    levels: list[int] = field(default_factory=lambda: [20])
    duration: float | None = 10.0
    requests: int | None = None
    warmup: float = 2.0
    rate: float | None = None
    arrival: Arrival = "constant"
    mix: dict[str, int] = field(default_factory=lambda: parse_mix(DEFAULT_MIX, DB_OPERATIONS))
    repeat: int = 1
    processes: int = 1
    client: Client = "concurrent"
    url: str | None = None
    keep: bool = False
    request_timeout: float = 30.0
    pool_sizes: list[int] = field(default_factory=lambda: [20])

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        if self.target not in TARGETS:
            raise InvalidInput(f"target '{self.target}' must be db or http")
        if self.duration is not None and self.duration <= 0:
            raise InvalidInput("--duration must be more than zero")
        if self.requests is not None and self.requests < 1:
            raise InvalidInput("--requests must be at least 1")
        if self.duration is None and self.requests is None:
            raise InvalidInput("give --duration or --requests")
        if self.warmup < 0:
            raise InvalidInput("--warmup cannot be negative")
        if self.rate is not None and self.rate <= 0:
            raise InvalidInput("--rate must be more than zero requests per second")
        if self.repeat < 1:
            raise InvalidInput("--repeat must be at least 1")
        if self.processes < 1:
            raise InvalidInput("--processes must be at least 1")
        if self.processes > 1 and any(level < self.processes for level in self.levels):
            raise InvalidInput(
                f"--processes {self.processes} needs a concurrency of at least {self.processes} "
                "at every level (each process runs a share of the workers)"
            )
        if len(self.pool_sizes) > 1 and self.target != "db":
            raise InvalidInput("a --pool-size list sweeps the pools bench opens itself: "
                               "use it with --target db")
        if self.url is not None and self.target != "http":
            raise InvalidInput("bench --url names a running server; it needs --target http")
        if "livez" in self.mix and self.target != "http":
            raise InvalidInput("the livez operation exists only with --target http")
        if self.client == "sequential":
            if self.target != "http":
                raise InvalidInput("--client sequential reproduces an HTTP comparison: add --target http")
            if self.rate is not None or self.processes > 1:
                raise InvalidInput("--client sequential takes no --rate and no --processes")

    @property
    def open_loop(self) -> bool:
        return self.rate is not None

    @property
    def run_modes(self) -> tuple[str, ...]:
        """The modes each level runs: sync/async, or the article's sequential/concurrent."""
        if self.client == "sequential":
            return ("sequential", "concurrent")
        return self.modes

    def plan(self) -> list[RunPlan]:
        """Every run in order: repeats interleave the modes, alternating which goes first;
        each pool size is run in both modes before the next."""
        runs: list[RunPlan] = []
        for concurrency in self.levels:
            for pool_size in self.pool_sizes:
                for repeat in range(self.repeat):
                    order = self.run_modes if repeat % 2 == 0 else tuple(reversed(self.run_modes))
                    for mode in order:
                        runs.append(RunPlan(mode, concurrency, repeat, len(runs), pool_size))
        return runs

    @property
    def sweeps_pool(self) -> bool:
        return len(self.pool_sizes) > 1

    def describe(self) -> dict[str, object]:
        return {
            "target": self.target,
            "modes": list(self.run_modes),
            "concurrency": list(self.levels),
            "duration_s": self.duration,
            "requests": self.requests,
            "warmup_s": self.warmup,
            "rate": self.rate,
            "arrival": self.arrival if self.open_loop else None,
            "load_model": "open" if self.open_loop else "closed",
            "mix": dict(self.mix),
            "repeat": self.repeat,
            "processes": self.processes,
            "client": self.client,
            "keep": self.keep,
            "request_timeout_s": self.request_timeout,
            "pool_sizes": list(self.pool_sizes),
        }
