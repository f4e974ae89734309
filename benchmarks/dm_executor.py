"""How the loop's executor size caps dm+dmAsync throughput (dmPython DRIVER DOUBLE, no server).

Model: each request checks a connection out of a fixed pool of ``--pool``
connections, runs one statement and closes the connection, which ends the
implicit transaction with a rollback.  That is two driver round trips of
``--latency`` seconds each, both spent in worker threads of the event loop's
default executor.  With enough threads the pool is the only limit:

    bound = pool / (2 x latency)      (30 / 0.010 s = 3,000 req/s)

(The issue quotes 30 / 0.005 = 6,000 req/s for one round trip per request;
SQLAlchemy always ends a connection's transaction with a rollback, so a real
request costs two.)  The script also measures the CPU ceiling of this machine
for the same request path with a near-zero latency, and judges dmitems'
sizing against the lower of the two limits.

Runs, all in one process on the real dmAsync and dmSQLAlchemy over the dmPython
driver double (tests/dm_driver_double):

* ``upstream``: the loop's default executor as asyncio makes it,
  min(32, cpu_count + 4) threads (6 on 2 cores);
* ``dmitems``: the executor sized by ``Database`` (pool capacity + margin);
* ``ceiling``: dmitems' sizing with a 0.1 ms round trip (CPU-bound);
* ``raw``: the raw driver double with no asyncio and no SQLAlchemy: ``--pool``
  threads, each with its own connection, each doing the same two round trips
  (execute + fetchall, rollback) in a loop.  What the pool's connections can
  do on this machine when nothing sits between them and the caller.

Requests go through ``Database.connect()``, the path dmitems' own commands and
server take (FIFO pool slots, error translation), in both runs; only the
executor differs.  The target for dmitems' sizing is >= 0.9 x the limit; the
ratio to the raw driver is printed beside it.

    python benchmarks/dm_executor.py                # 5 ms, concurrency 100, pool 30
    python benchmarks/dm_executor.py --seconds 5 --latency 0.005 --concurrency 100 --pool 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

URL = "dm+dmAsync://SYSDBA:bench@127.0.0.1:5236"


async def drive(database: Any, seconds: float, concurrency: int) -> int:
    from sqlalchemy import text

    statement = text("SELECT 1 FROM DUAL")
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with database.connect() as connection:
                await connection.execute(statement)
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def run(sized: bool, args: argparse.Namespace) -> tuple[float, int]:
    from dmitems.config import load_settings
    from dmitems.db import Database
    from dmitems.db.dm_compat import default_executor_size

    settings = load_settings(
        flags={"database_url": URL, "database_pool_size": args.pool, "database_max_overflow": 0}
    )
    database = Database(settings)
    if not sized:
        # Build the engine exactly as Database does, minus the executor sizing.
        async def keep_upstream_executor(_settings: Any) -> None:
            return None

        database.backend.prepare_loop = keep_upstream_executor  # type: ignore[method-assign]
    original_options = database.backend.engine_options

    def one_round_trip(settings: Any, is_async: bool) -> dict[str, Any]:
        options = original_options(settings, is_async)
        options["pool_reset_on_return"] = None  # the connection's own rollback remains
        return options

    database.backend.engine_options = one_round_trip  # type: ignore[method-assign]
    try:
        await database.warm_up(args.pool)
        threads = default_executor_size(asyncio.get_running_loop())
        await drive(database, min(0.5, args.seconds), args.concurrency)  # warm-up
        started = time.perf_counter()
        count = await drive(database, args.seconds, args.concurrency)
        return count / (time.perf_counter() - started), threads
    finally:
        await database.dispose()
        # The backend object is shared: drop the per-run overrides.
        vars(database.backend).pop("prepare_loop", None)
        vars(database.backend).pop("engine_options", None)


def raw_driver(seconds: float, pool: int) -> float:
    """Requests/s of ``pool`` threads on the raw driver double, two round trips each."""
    import threading

    import dmPython  # the double: installed() has put it first on sys.path

    connections = [
        dmPython.connect(user="SYSDBA", password="bench", server="127.0.0.1", port=5236)
        for _ in range(pool)
    ]
    counts = [0] * pool
    deadline = time.perf_counter() + seconds

    def loop(index: int) -> None:
        connection = connections[index]
        while time.perf_counter() < deadline:
            cursor = connection.cursor()
            cursor.execute("SELECT 1 FROM DUAL")
            cursor.fetchall()
            cursor.close()
            connection.rollback()
            counts[index] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(index,)) for index in range(pool)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate = sum(counts) / (time.perf_counter() - started)
    for connection in connections:
        connection.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--latency", type=float, default=0.005, help="seconds per round trip")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--pool", type=int, default=30)
    args = parser.parse_args()

    from tests.dm_driver_double import installed

    bound = args.pool / (2 * args.latency)
    print(
        f"dm+dmAsync over the dmPython driver double: {args.latency * 1000:g} ms per round trip, "
        f"concurrency {args.concurrency}, pool {args.pool}, {os.cpu_count()} CPUs"
    )
    print(f"pool-capacity bound: {args.pool} / (2 x {args.latency:g} s) = {bound:,.0f} req/s")
    results = {}
    with installed() as double:
        for label, sized, latency in (
            ("upstream", False, args.latency),
            ("dmitems", True, args.latency),
            ("ceiling", True, 0.0001),
        ):
            double.configure(latency=latency)
            rate, threads = asyncio.run(run(sized, args))
            results[label] = rate
            print(
                f"{label:9} executor {threads:3d} threads, {latency * 1000:g} ms: "
                f"{rate:8,.0f} req/s = {rate / bound:4.2f} x bound"
            )
        double.configure(latency=args.latency)
        raw = raw_driver(args.seconds, args.pool)
        print(f"raw       {args.pool:3d} threads on the driver, {args.latency * 1000:g} ms: "
              f"{raw:8,.0f} req/s = {raw / bound:4.2f} x bound")
    limit = min(bound, results["ceiling"])
    print(f"dmitems / upstream: {results['dmitems'] / results['upstream']:.2f} x")
    print(f"dmitems / raw driver: {results['dmitems'] / raw:.2f} x")
    ratio = results["dmitems"] / limit
    verdict = "meets" if ratio >= 0.9 else "misses"
    print(
        f"dmitems = {ratio:.2f} x the limit (min of bound and CPU ceiling, {limit:,.0f} req/s): "
        f"{verdict} the 0.9 x target"
    )


if __name__ == "__main__":
    main()
