#!/usr/bin/env bash
# Soak test of `dmitems serve` on a throwaway PostgreSQL this script starts and removes:
# DURATION seconds (60) of mixed load at CONCURRENCY (100) clients, after WARMUP seconds
# (5) that are not counted.  The mix: 60% GET /items/{id}, 15% GET /items?limit=20,
# 15% POST /items, 10% PATCH /items/{id}.
#
# Reports: errors (transport errors and any status other than 200/201; target 0), the
# server's RSS at the start of the measured window and at its end (target: growth < 10%),
# and req/s, p50 and p99 for each WINDOW-second window (10), so a slow leak or a
# degrading tail shows as a trend.
#
# Usage: bash benchmarks/soak.sh                      (about 75 s)
#        DURATION=20 bash benchmarks/soak.sh           (a quick look)
#        MODE=sync bash benchmarks/soak.sh             (the sync server mode)
# Env: DURATION (60), WARMUP (5), WINDOW (10), CONCURRENCY (100), MODE (async),
#      POOL_SIZE (20), MAX_OVERFLOW (10), PYTHON (the venv's python), DMITEMS.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
if [ -z "${PYTHON:-}" ]; then
    if [ -n "${VIRTUAL_ENV:-}" ]; then PYTHON="$VIRTUAL_ENV/bin/python"
    elif [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"
    else PYTHON="$(command -v python3)"; fi
fi
DMITEMS="${DMITEMS:-$(dirname "$PYTHON")/dmitems}"
DURATION="${DURATION:-60}"
WARMUP="${WARMUP:-5}"
WINDOW="${WINDOW:-10}"
CONCURRENCY="${CONCURRENCY:-100}"
MODE="${MODE:-async}"
POOL_SIZE="${POOL_SIZE:-20}"
MAX_OVERFLOW="${MAX_OVERFLOW:-10}"

WORK="$(mktemp -d /tmp/dmitems-soak.XXXXXX)"
SERVER_PID=""
PG_STATE="$WORK/pg.json"

cleanup() {
    if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ -f "$PG_STATE" ]; then
        (cd "$ROOT" && "$PYTHON" -c 'import json, sys
from pathlib import Path
from tests.postgres_server import PostgresServer
state = json.loads(Path(sys.argv[1]).read_text())
PostgresServer(Path(state["bindir"]), Path(state["workdir"]), state["port"], state["user"]).stop()' "$PG_STATE") || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting a throwaway PostgreSQL" >&2
(cd "$ROOT" && "$PYTHON" -c 'import json, sys
from tests.postgres_server import start_server
s = start_server()
json.dump({"bindir": str(s.bindir), "workdir": str(s.workdir), "port": s.port, "user": s.user,
           "url": s.url("postgres")}, open(sys.argv[1], "w"))' "$PG_STATE")
URL="$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["url"])' "$PG_STATE")"
PORT="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

echo "== dmitems serve ($MODE mode, pool $POOL_SIZE + $MAX_OVERFLOW) on 127.0.0.1:$PORT" >&2
DMITEMS_DATABASE_POOL_SIZE="$POOL_SIZE" DMITEMS_DATABASE_MAX_OVERFLOW="$MAX_OVERFLOW" \
    "$DMITEMS" --url "$URL" serve --host 127.0.0.1 --port "$PORT" --mode "$MODE" --init-db \
    >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/health" && break
    sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/health" || { echo "error: serve did not start" >&2; cat "$WORK/serve.log" >&2; exit 1; }

echo "== load: $CONCURRENCY clients, ${WARMUP}s warm-up, then ${DURATION}s measured" >&2
"$PYTHON" - "http://127.0.0.1:$PORT" "$SERVER_PID" "$DURATION" "$WARMUP" "$WINDOW" "$CONCURRENCY" "$MODE" <<'PY'
import asyncio, random, sys, time
from pathlib import Path

import aiohttp
from hdrh.histogram import HdrHistogram

base, pid, duration, warmup, window, concurrency, mode = sys.argv[1:]
pid, duration, warmup, window, concurrency = int(pid), float(duration), float(warmup), float(window), int(concurrency)
windows = int(-(-duration // window))


def rss_mb() -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Totals:
    def __init__(self) -> None:
        self.histograms = [HdrHistogram(1, 60_000_000, 3) for _ in range(windows)]  # microseconds
        self.errors: dict[str, int] = {}
        self.requests = 0


async def client(session, seed, ids, totals, started, stop):
    chooser = random.Random(seed)
    while not stop.is_set():
        roll = chooser.random()
        began = time.monotonic()
        try:
            if roll < 0.60:
                response = await session.get(f"{base}/items/{chooser.choice(ids)}")
            elif roll < 0.75:
                response = await session.get(f"{base}/items", params={"limit": "20"})
            elif roll < 0.90:
                response = await session.post(f"{base}/items", json={"name": f"soak {seed}", "price": seed})
            else:
                response = await session.patch(f"{base}/items/{chooser.choice(ids)}",
                                               json={"price": chooser.randrange(10_000)})
            status = response.status
            await response.read()
            response.release()
            error = None if status in (200, 201) else f"HTTP {status}"
        except Exception as exc:  # a transport error is an error too
            error = type(exc).__name__
        ended = time.monotonic()
        offset = began - started
        if offset < 0 or offset >= duration:
            continue  # warm-up, or past the window
        totals.requests += 1
        totals.histograms[int(offset // window)].record_value(max(1, int((ended - began) * 1e6)))
        if error:
            totals.errors[error] = totals.errors.get(error, 0) + 1


async def main() -> None:
    connector = aiohttp.TCPConnector(limit=concurrency + 10)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        ids = []
        for i in range(200):
            async with session.post(f"{base}/items", json={"name": f"seed {i}", "price": i}) as response:
                ids.append((await response.json())["id"])
        totals, stop = Totals(), asyncio.Event()
        started = time.monotonic() + warmup
        tasks = [asyncio.create_task(client(session, seed, ids, totals, started, stop))
                 for seed in range(concurrency)]
        await asyncio.sleep(warmup)
        rss_start = rss_mb()
        await asyncio.sleep(duration)
        rss_end = rss_mb()
        stop.set()
        await asyncio.gather(*tasks)

    print(f"\nsoak: dmitems serve ({mode} mode) on PostgreSQL, {concurrency} clients, "
          f"{duration:g} s measured after {warmup:g} s warm-up")
    print(f"mix: 60% GET /items/{{id}}, 15% GET /items?limit=20, 15% POST /items, 10% PATCH /items/{{id}}\n")
    print(f"{'window':<12}{'requests':>10}{'req/s':>9}{'p50':>9}{'p99':>9}{'max':>9}")
    for index, histogram in enumerate(totals.histograms):
        count = histogram.get_total_count()
        span = min(window, duration - index * window)
        ms = lambda q: histogram.get_value_at_percentile(q) / 1000
        label = f"{index * window:g}-{index * window + span:g} s"
        print(f"{label:<12}{count:>10,}{count / span:>9,.0f}{ms(50):>7.1f}ms{ms(99):>7.1f}ms"
              f"{histogram.get_max_value() / 1000:>7.0f}ms")
    errors = sum(totals.errors.values())
    growth = (rss_end - rss_start) / rss_start * 100
    detail = ", ".join(f"{name}: {n}" for name, n in sorted(totals.errors.items()))
    print(f"\nrequests: {totals.requests:,}; errors: {errors}{f' ({detail})' if detail else ''} (target 0)")
    print(f"server RSS: {rss_start:.1f} MB at the start, {rss_end:.1f} MB at the end: "
          f"{growth:+.1f}% (target < 10%)")
    verdict = "met" if errors == 0 and growth < 10 else "MISSED"
    print(f"targets: {verdict}")


asyncio.run(main())
PY
