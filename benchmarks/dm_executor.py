"""How the loop's executor size caps dm+dmAsync throughput (dmPython DRIVER DOUBLE, no server).

Each request is what the API's ``GET /items/{id}`` does on DM, through the
route's own store (``store_parameter``): take a connection from a fixed pool
of ``--pool`` connections (``Database.connect()``, dmitems' FIFO slots), read
one item, give the connection back, where the pool rolls back the transaction
DM opened for the read.  On dmitems' dm+dmAsync dialect (dmitems.db.dm_dialect)
the read and its fetch are one worker-thread call and the rollback another:
two round trips of ``--latency`` seconds, counted from the double's call log.
With threads plentiful, the pool is the only limit:

    bound = pool / (round trips x latency)      (30 / (2 x 0.005 s) = 3,000 req/s)

Runs, all in one process on the real dmAsync and dmSQLAlchemy over the
dmPython driver double (tests/dm_driver_double):

* ``upstream``: the request in an event loop dmitems does not own, so its
  default executor is asyncio's own, min(32, cpu_count + 4) threads (6 on 2
  cores), as in an application that embeds dmitems without sizing it;
* ``dmitems``: the same request in a loop dmitems owns (``loops.owned``, as
  the CLI, ``serve`` and ``bench`` run theirs), whose executor dmitems sizes
  from the pool (capacity + margin): the figure judged against the target;
* ``ceiling``: dmitems' run with a 0.1 ms round trip: this machine's CPU limit;
* ``raw``: the driver double with no asyncio and no SQLAlchemy: ``--pool``
  threads, each on its own connection, each doing the same read and rollback
  in a loop: what the pool's connections can do when nothing sits between
  them and the caller.

Each run is repeated ``--repeat`` times, interleaved; medians are reported.
The target for dmitems is >= 0.85 x the limit (the lower of the bound and the
CPU ceiling); its ratio to the raw driver is printed beside it.

    python benchmarks/dm_executor.py                # 5 ms, concurrency 100, pool 30
    python benchmarks/dm_executor.py --seconds 5 --repeat 5 --latency 0.005
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

URL = "dm+dmAsync://SYSDBA:bench@127.0.0.1:5236"
ROUND_TRIPS = ("execute", "executemany", "commit", "rollback", "ping")
TARGET = 0.85  # x the limit; the version before the read relay measured 0.87-0.89


async def drive(request: Any, seconds: float, concurrency: int) -> int:
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await request()
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def run(owned: bool, args: argparse.Namespace, double: Any) -> dict[str, float]:
    """One timed run: req/s, executor threads, and driver round trips per request."""
    from dmitems.api.dependencies import store_parameter
    from dmitems.config import load_settings
    from dmitems.db import Database, loops
    from dmitems.db.schema import create_schema
    from dmitems.repository import AsyncItems
    from dmitems.schemas import ItemCreate

    if owned:
        loops.own()  # as the CLI, serve and bench do with their loops
    settings = load_settings(
        flags={"database_url": URL, "database_pool_size": args.pool, "database_max_overflow": 0}
    )
    database = Database(settings)
    try:
        await create_schema(database)
        async with database.begin() as connection:  # the one row this benchmark reads
            item = await AsyncItems(connection, database.backend).create(
                ItemCreate(name="dm_executor benchmark", price=1)
            )
        await database.warm_up(args.pool)
        threads = loops.sized_threads(asyncio.get_running_loop()) or loops.UPSTREAM_THREADS

        reading = store_parameter(database, "async", transaction=False, writes=False)

        async def request() -> None:
            async with reading() as store:
                await store.get(item.id)

        await drive(request, min(0.5, args.seconds), args.concurrency)  # warm-up
        # The double logs every call; a log kept across runs grows to hundreds of thousands
        # of objects, and the garbage collector's pauses then slow each later run.
        double.calls.clear()
        started = time.perf_counter()
        count = await drive(request, args.seconds, args.concurrency)
        elapsed = time.perf_counter() - started
        trips = sum(call.name in ROUND_TRIPS for call in double.calls)
        double.calls.clear()
        return {"rate": count / elapsed, "threads": threads, "trips": trips / max(count, 1)}
    finally:
        await database.dispose()


def raw_driver(seconds: float, pool: int, sql: str, arguments: list[Any]) -> float:
    """Requests/s of ``pool`` threads on the raw driver double: the same read and rollback."""
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
            cursor.execute(sql, arguments)
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


def read_statement() -> tuple[str, list[Any]]:
    """The API read as the DM dialect compiles it, for the raw-driver reference."""
    from sqlalchemy import create_engine

    from dmitems.statements import get_item

    statement, parameters = get_item(1)
    compiled = statement.compile(dialect=create_engine("dm+dmPython://u:p@h:5236").dialect)
    return compiled.string, [parameters[name] for name in compiled.positiontup or ()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--latency", type=float, default=0.005, help="seconds per round trip")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--pool", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind (medians)")
    args = parser.parse_args()

    from tests.dm_driver_double import installed

    print(
        f"dm+dmAsync over the dmPython driver double: {args.latency * 1000:g} ms per round trip, "
        f"concurrency {args.concurrency}, pool {args.pool}, {os.cpu_count()} CPUs, "
        f"{args.repeat} runs each (medians)"
    )
    kinds = (  # label, loop owned by dmitems (executor sized), latency
        ("upstream", False, args.latency),
        ("dmitems", True, args.latency),
        ("ceiling", True, 0.0001),
    )
    runs: dict[str, list[dict[str, float]]] = {label: [] for label, *_ in kinds}
    raw: list[float] = []
    with installed() as double:
        sql, arguments = read_statement()
        for _ in range(args.repeat):
            for label, owned, latency in kinds:
                double.reset()  # an empty server: each run creates its table afresh
                double.configure(latency=latency)
                runs[label].append(asyncio.run(run(owned, args, double)))
            double.configure(latency=args.latency)
            raw.append(raw_driver(args.seconds, args.pool, sql, arguments))
            double.calls.clear()
    results = {label: statistics.median(r["rate"] for r in rs) for label, rs in runs.items()}
    trips = {label: statistics.median(r["trips"] for r in rs) for label, rs in runs.items()}
    bound = args.pool / (trips["dmitems"] * args.latency)
    print(
        f"pool-capacity bound: {args.pool} / ({trips['dmitems']:.2f} round trips x "
        f"{args.latency:g} s) = {bound:,.0f} req/s"
    )
    for label, _owned, latency in kinds:
        rates = ", ".join(f"{r['rate']:,.0f}" for r in runs[label])
        print(
            f"{label:10} {int(runs[label][0]['threads']):3d} threads, {latency * 1000:g} ms, "
            f"{trips[label]:.2f} round trips: {results[label]:8,.0f} req/s = "
            f"{results[label] / bound:4.2f} x bound  [{rates}]"
        )
    raw_rate = statistics.median(raw)
    print(
        f"{'raw':10} {args.pool:3d} threads on the driver, {args.latency * 1000:g} ms: "
        f"{raw_rate:8,.0f} req/s = {raw_rate / bound:4.2f} x bound  "
        f"[{', '.join(f'{r:,.0f}' for r in raw)}]"
    )
    limit = min(bound, results["ceiling"])
    print(f"dmitems / upstream: {results['dmitems'] / results['upstream']:.2f} x")
    print(f"dmitems / raw driver: {results['dmitems'] / raw_rate:.2f} x")
    ratio = results["dmitems"] / limit
    verdict = "meets" if ratio >= TARGET else "misses"
    print(
        f"dmitems = {ratio:.2f} x the limit (min of bound and CPU ceiling, {limit:,.0f} req/s): "
        f"{verdict} the {TARGET} x target"
    )


if __name__ == "__main__":
    main()
