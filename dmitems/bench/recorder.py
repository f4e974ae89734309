"""Recording latencies into HdrHistograms, per operation, per second and in total.

Latency is recorded in microseconds from the *intended* start of a request:
in a closed loop that is when the worker sent it; in an open loop (``--rate``)
it is the moment the schedule said it should go, so time spent waiting for a
free worker counts (this corrects coordinated omission, as wrk2 does).

Only successful requests go into the latency histograms; failures are counted
by operation and by kind.  A :class:`Recorder` is shared by the workers of one
run (threads or tasks) and guarded by one lock; :meth:`Recorder.snapshot` and
:meth:`Recorder.absorb` carry it across processes.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hdrh.histogram import HdrHistogram

HIGHEST_US = 300_000_000  # five minutes; slower values are clamped (and visible as the max)
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
PERCENTILE_KEYS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms")


def new_histogram(digits: int = 3) -> HdrHistogram:
    from hdrh.histogram import HdrHistogram

    return HdrHistogram(1, HIGHEST_US, digits)


def decode_histogram(encoded: str) -> HdrHistogram:
    from hdrh.histogram import HdrHistogram

    return HdrHistogram.decode(encoded)


def encode_histogram(histogram: HdrHistogram) -> str:
    """HdrHistogram V2 encoding, compressed and base64: what the JSON file holds."""
    return str(histogram.encode().decode("ascii"))


def to_us(seconds: float) -> int:
    return min(HIGHEST_US, max(1, int(seconds * 1_000_000)))


def histogram_stats(histogram: HdrHistogram) -> dict[str, float | None]:
    """mean, stdev, min, the percentiles and max, in milliseconds (None when empty)."""
    if histogram.get_total_count() == 0:
        return {key: None for key in ("mean_ms", "stdev_ms", "min_ms", *PERCENTILE_KEYS, "max_ms")}
    values = histogram.get_percentile_to_value_dict(list(PERCENTILES))
    stats: dict[str, float | None] = {
        "mean_ms": histogram.get_mean_value() / 1000,
        "stdev_ms": histogram.get_stddev() / 1000,
        "min_ms": histogram.get_min_value() / 1000,
    }
    for percentile, key in zip(PERCENTILES, PERCENTILE_KEYS):
        stats[key] = values[percentile] / 1000
    # The histogram reports the top of the max's bucket; the true max is exact.
    stats["max_ms"] = histogram.get_max_value() / 1000
    return stats


@dataclass
class Second:
    """One second of the measured window, by completion time."""

    requests: int = 0
    errors: int = 0
    in_flight: int = 0
    histogram: Any = None


@dataclass
class Recorder:
    operations: tuple[str, ...]
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.latency = {name: new_histogram() for name in self.operations}
        self.total = new_histogram()
        self.succeeded: Counter[str] = Counter()
        self.failed: dict[str, Counter[str]] = {name: Counter() for name in self.operations}
        self.seconds: list[Second] = []
        self.in_flight = 0
        self.running: Counter[str] = Counter()
        self.closed = False
        self.late = 0
        self.dropped = 0
        self.skipped = 0
        self.finished: float | None = None
        # Where the time goes (filled only where it applies).
        self.pool_wait = new_histogram()
        self.execution = new_histogram()
        self.queue_wait = new_histogram()

    # -- recording (called by workers) -------------------------------------

    def begin(
        self, operation: str, intended: float, started: float, late_after: float | None
    ) -> None:
        with self.lock:
            if self.closed:
                return
            self.in_flight += 1
            self.running[operation] += 1
            if late_after is not None:
                self.queue_wait.record_value(to_us(started - intended))
                if started - intended > late_after:
                    self.late += 1

    def success(
        self, operation: str, intended: float, ended: float, phases: tuple[float, float] | None
    ) -> None:
        latency = to_us(ended - intended)
        with self.lock:
            if self._end(operation):
                self.succeeded[operation] += 1
                self.latency[operation].record_value(latency)
                self.total.record_value(latency)
                second = self._second(ended)
                second.requests += 1
                second.histogram.record_value(latency)
                if phases is not None:
                    self.pool_wait.record_value(to_us(phases[0]))
                    self.execution.record_value(to_us(phases[1]))

    def failure(self, operation: str, kind: str, ended: float) -> None:
        with self.lock:
            if self._end(operation):
                self.failed[operation][kind] += 1
                self._second(ended).errors += 1

    def skip(self, operation: str) -> None:
        """A request that had nothing to do (a delete with no bench row left to delete)."""
        with self.lock:
            if self._end(operation):
                self.skipped += 1

    def drop(self, count: int = 1) -> None:
        with self.lock:
            if not self.closed:
                self.dropped += count

    def close(self) -> None:
        """End the window: requests still running count as failed ("unfinished")."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.finished = time.perf_counter()
            for operation, count in self.running.items():
                if count:
                    self.failed[operation]["unfinished"] += count
            self.running.clear()
            self.in_flight = 0

    def _end(self, operation: str) -> bool:
        if self.closed:
            return False
        self.in_flight -= 1
        self.running[operation] -= 1
        return True

    def _second(self, ended: float) -> Second:
        index = max(0, int(ended - self.started))
        while len(self.seconds) <= index:
            self.seconds.append(Second(in_flight=self.in_flight, histogram=new_histogram(2)))
        return self.seconds[index]

    # -- reading -------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        end = self.finished if self.finished is not None else time.perf_counter()
        return max(end - self.started, 1e-9)

    def errors_by_kind(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for kinds in self.failed.values():
            total.update(kinds)
        return total

    def live(self) -> dict[str, Any]:
        """Figures for the live view: the last full second, and the run so far."""
        with self.lock:
            elapsed = self.elapsed
            index = int(elapsed) - 1
            second = self.seconds[index] if 0 <= index < len(self.seconds) else None
            p50 = p99 = None
            if second is not None and second.requests:
                values = second.histogram.get_percentile_to_value_dict([50.0, 99.0])
                p50, p99 = values[50.0] / 1000, values[99.0] / 1000
            return {
                "elapsed": elapsed,
                "rps": second.requests if second is not None else 0,
                "p50_ms": p50,
                "p99_ms": p99,
                "requests": sum(self.succeeded.values()),
                "errors": sum(sum(kinds.values()) for kinds in self.failed.values()),
                "in_flight": self.in_flight,
                "late": self.late,
                "dropped": self.dropped,
            }

    def stats(self, operation: str | None = None) -> dict[str, Any]:
        """Count, errors by kind, throughput and latency figures, in total or for one operation."""
        if operation is None:
            histogram, ok, kinds = self.total, sum(self.succeeded.values()), self.errors_by_kind()
        else:
            histogram, ok = self.latency[operation], self.succeeded[operation]
            kinds = self.failed[operation]
        errors = sum(kinds.values())
        return {
            "count": ok + errors,
            "ok": ok,
            "errors": errors,
            "errors_by_kind": dict(sorted(kinds.items())),
            "throughput_rps": ok / self.elapsed,
            **histogram_stats(histogram),
        }

    def timeseries(self) -> list[dict[str, Any]]:
        rows = []
        for index, second in enumerate(self.seconds):
            p50 = p99 = None
            if second.requests:
                values = second.histogram.get_percentile_to_value_dict([50.0, 99.0])
                p50, p99 = values[50.0] / 1000, values[99.0] / 1000
            rows.append(
                {
                    "second": index,
                    "requests": second.requests,
                    "errors": second.errors,
                    "in_flight": second.in_flight,
                    "p50_ms": p50,
                    "p99_ms": p99,
                }
            )
        return rows

    # -- crossing process boundaries -----------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything recorded, as plain data (histograms encoded) for another process."""
        with self.lock:
            return {
                "elapsed": self.elapsed,
                "latency": {name: encode_histogram(hist) for name, hist in self.latency.items()},
                "succeeded": dict(self.succeeded),
                "failed": {name: dict(kinds) for name, kinds in self.failed.items()},
                "seconds": [
                    (s.requests, s.errors, s.in_flight, encode_histogram(s.histogram)) for s in self.seconds
                ],
                "late": self.late,
                "dropped": self.dropped,
                "skipped": self.skipped,
                "pool_wait": encode_histogram(self.pool_wait),
                "execution": encode_histogram(self.execution),
                "queue_wait": encode_histogram(self.queue_wait),
            }

    def absorb(self, snapshot: dict[str, Any]) -> None:
        """Add another recorder's snapshot (same window, another process) to this one."""
        with self.lock:
            for name, encoded in snapshot["latency"].items():
                histogram = decode_histogram(encoded)
                self.latency[name].add(histogram)
                self.total.add(histogram)
            self.succeeded.update(snapshot["succeeded"])
            for name, kinds in snapshot["failed"].items():
                self.failed[name].update(kinds)
            for index, (requests, errors, in_flight, encoded) in enumerate(snapshot["seconds"]):
                while len(self.seconds) <= index:
                    self.seconds.append(Second(histogram=new_histogram(2)))
                second = self.seconds[index]
                second.requests += requests
                second.errors += errors
                second.in_flight += in_flight
                second.histogram.add(decode_histogram(encoded))
            self.late += snapshot["late"]
            self.dropped += snapshot["dropped"]
            self.skipped += snapshot["skipped"]
            for name in ("pool_wait", "execution", "queue_wait"):
                getattr(self, name).add(decode_histogram(snapshot[name]))
            so_far = self.finished - self.started if self.finished is not None else 0.0
            self.finished = self.started + max(so_far, snapshot["elapsed"])
