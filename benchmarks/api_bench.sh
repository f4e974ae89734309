#!/usr/bin/env bash
# HTTP benchmark of `dmitems serve` (one worker) against a straightforward
# implementation of the same routes (benchmarks/naive_app.py), measured in the
# same run, on SQLite and on a throwaway PostgreSQL this script starts and removes.
#
# For each backend and each implementation, with `hey` at concurrency 100:
#   POST /items/create_item, GET /items/read_items?limit=100, GET /items/read_item/{id};
# then POST /items/batch_create with 1,000 items per request (concurrency 4).
# Prints req/s, p50/p99, non-2xx counts, batch rows/s, and dmitems/reference ratios.
# Both servers get the same pool settings (POOL_SIZE + MAX_OVERFLOW) and one worker.
# With RUNS=N the whole measurement is repeated N times (fresh servers and databases
# each time) and a last table gives the median ratio of each route and its range.
#
# Usage: bash benchmarks/api_bench.sh                     (10 s per route; about 4 minutes)
#        DURATION=3s bash benchmarks/api_bench.sh          (a quick look)
#        RUNS=3 DURATION=5s bash benchmarks/api_bench.sh   (medians over 3 runs)
# Env: DURATION, RUNS (1), CONCURRENCY (100), BATCH_CONCURRENCY (4),
#      BACKENDS ("sqlite postgresql"), POOL_SIZE (20), MAX_OVERFLOW (10: the reference's
#      own setting), PYTHON (the venv's python), DMITEMS (the dmitems command).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
if [ -z "${PYTHON:-}" ]; then
    if [ -n "${VIRTUAL_ENV:-}" ]; then PYTHON="$VIRTUAL_ENV/bin/python"
    elif [ -x "$ROOT/../venv/bin/python" ]; then PYTHON="$ROOT/../venv/bin/python"
    else PYTHON="$(command -v python3)"; fi
fi
DMITEMS="${DMITEMS:-$(dirname "$PYTHON")/dmitems}"
DURATION="${DURATION:-10s}"
CONCURRENCY="${CONCURRENCY:-100}"
BATCH_CONCURRENCY="${BATCH_CONCURRENCY:-4}"
BACKENDS="${BACKENDS:-sqlite postgresql}"
RUNS="${RUNS:-1}"
POOL_SIZE="${POOL_SIZE:-20}"
MAX_OVERFLOW="${MAX_OVERFLOW:-10}"
command -v hey >/dev/null || { echo "error: hey not found (apt-get install hey)" >&2; exit 2; }

WORK="$(mktemp -d /tmp/dmitems-api-bench.XXXXXX)"
SERVER_PID=""
PG_STATE=""

cleanup() {
    if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$PG_STATE" ]; then
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

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_up() {  # url
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "error: server at $1 did not start" >&2; return 1
}

start_postgres() {
    PG_STATE="$WORK/pg.json"
    (cd "$ROOT" && "$PYTHON" -c 'import json, sys
from tests.postgres_server import start_server
s = start_server()
json.dump({"bindir": str(s.bindir), "workdir": str(s.workdir), "port": s.port, "user": s.user,
           "url": s.url("postgres")}, open(sys.argv[1], "w"))' "$PG_STATE")
}

pg_database() {  # name -> prints URL of a fresh database
    (cd "$ROOT" && "$PYTHON" -c 'import json, sys, psycopg
state = json.load(open(sys.argv[1]))
admin = state["url"].replace("postgresql+asyncpg", "postgresql")
with psycopg.connect(admin, autocommit=True) as c:
    c.execute(f"DROP DATABASE IF EXISTS {sys.argv[2]}")
    c.execute(f"CREATE DATABASE {sys.argv[2]}")
print(state["url"].rsplit("/", 1)[0] + "/" + sys.argv[2])' "$PG_STATE" "$1")
}

"$PYTHON" -c 'import json; print(json.dumps([{"name": f"批量{i}", "description": "bench", "price": i} for i in range(1000)]))' > "$WORK/batch.json"

run_one() {  # backend impl url run
    local backend="$1" impl="$2" url="$3" run="$4" port base out
    port="$(free_port)"; base="http://127.0.0.1:$port"; out="$WORK/$run/$backend-$impl"
    mkdir -p "$WORK/$run"
    "$DMITEMS" --url "$url" init-db --drop --yes >/dev/null
    if [ "$impl" = dmitems ]; then
        DMITEMS_DATABASE_POOL_SIZE="$POOL_SIZE" DMITEMS_DATABASE_MAX_OVERFLOW="$MAX_OVERFLOW" \
            "$DMITEMS" --url "$url" serve --port "$port" >"$out.log" 2>&1 &
    else
        NAIVE_POOL_SIZE="$POOL_SIZE" NAIVE_MAX_OVERFLOW="$MAX_OVERFLOW" \
            NAIVE_DATABASE_URL="$url" "$PYTHON" "$HERE/naive_app.py" "$port" >"$out.log" 2>&1 &
    fi
    SERVER_PID=$!
    wait_up "$base/items/read_items?limit=1"
    echo "  $impl: create_item" >&2
    hey -n 200 -c 20 -m POST -T application/json -d '{"name":"warm","price":1}' "$base/items/create_item" >/dev/null
    hey -z "$DURATION" -c "$CONCURRENCY" -m POST -T application/json \
        -d '{"name":"bench","description":"hey","price":199}' "$base/items/create_item" > "$out-create.txt"
    echo "  $impl: read_items" >&2
    hey -z "$DURATION" -c "$CONCURRENCY" "$base/items/read_items?limit=100" > "$out-read_items.txt"
    echo "  $impl: read_item" >&2
    hey -z "$DURATION" -c "$CONCURRENCY" "$base/items/read_item/42" > "$out-read_item.txt"
    echo "  $impl: batch_create" >&2
    hey -z "$DURATION" -c "$BATCH_CONCURRENCY" -m POST -T application/json -D "$WORK/batch.json" \
        "$base/items/batch_create" > "$out-batch.txt"
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
}

for run in $(seq 1 "$RUNS"); do
    for backend in $BACKENDS; do
        echo "== run $run/$RUNS: $backend" >&2
        for impl in naive dmitems; do
            if [ "$backend" = sqlite ]; then
                url="sqlite+aiosqlite:///$WORK/$impl-$run.db"
            else
                [ -n "$PG_STATE" ] || start_postgres
                url="$(pg_database "bench_$impl")"
            fi
            run_one "$backend" "$impl" "$url" "$run"
        done
    done
done

"$PYTHON" - "$WORK" "$BACKENDS" "$DURATION" "$CONCURRENCY" "$BATCH_CONCURRENCY" "$RUNS" "$POOL_SIZE" "$MAX_OVERFLOW" <<'PY'
import re, statistics, sys
from pathlib import Path

work, backends, duration, concurrency, batch_concurrency, runs, pool_size, max_overflow = sys.argv[1:]
runs = int(runs)
ROUTES = [("create", "POST create_item"), ("read_items", "GET read_items?limit=100"),
          ("read_item", "GET read_item/{id}"), ("batch", "POST batch_create x1000")]

def parse(path):
    text = Path(path).read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    pct = dict(re.findall(r"(\d+)%% in ([\d.]+) secs".replace("%%", "%"), text))
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", text)}
    tail = text.split("Error distribution")[1] if "Error distribution" in text else ""
    errors = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]", tail, re.M))
    ok = sum(n for c, n in codes.items() if 200 <= c < 300)
    bad = sum(n for c, n in codes.items() if not 200 <= c < 300) + errors
    total = sum(codes.values()) or 1
    return {"rps": rps * ok / total, "p50": float(pct.get("50", "nan")), "p99": float(pct.get("99", "nan")), "bad": bad}

ms = lambda seconds: "-" if seconds != seconds else f"{seconds * 1000:.0f}ms"
fmt = lambda value: "-" if value != value else f"{value:.2f}"
ratios = {}  # (backend, key) -> [(req/s ratio, p99 ratio), ...] over the runs
for run in range(1, runs + 1):
    print(f"\nrun {run}/{runs}: hey, {duration} per route, concurrency {concurrency} (batch: {batch_concurrency}), "
          f"one worker each, pool {pool_size} + {max_overflow} each")
    print(f"{'backend':<11}{'route':<26}{'reference req/s':>16}{'p50':>8}{'p99':>8}{'dmitems req/s':>15}{'p50':>8}{'p99':>8}{'req/s x':>9}{'p99 /':>8}{'non-2xx':>10}")
    for backend in backends.split():
        for key, label in ROUTES:
            ref = parse(f"{work}/{run}/{backend}-naive-{key}.txt")
            new = parse(f"{work}/{run}/{backend}-dmitems-{key}.txt")
            ratio = new["rps"] / ref["rps"] if ref["rps"] else float("inf")
            p99 = new["p99"] / ref["p99"] if ref["p99"] == ref["p99"] and ref["p99"] else float("nan")
            ratios.setdefault((backend, key), []).append((ratio, p99))
            scale = 1000 if key == "batch" else 1
            print(f"{backend:<11}{label:<26}{ref['rps']*scale:>16,.0f}{ms(ref['p50']):>8}{ms(ref['p99']):>8}"
                  f"{new['rps']*scale:>15,.0f}{ms(new['p50']):>8}{ms(new['p99']):>8}{ratio:>8.1f}x"
                  f"{fmt(p99):>8}{ref['bad']:>5}/{new['bad']:<4}")

print("\nbatch rows/s are 2xx req/s x 1000 (p99 '-': too few batch requests for hey to report it); "
      "'non-2xx' is reference/dmitems; req/s counts 2xx responses only")
print(f"\nratios, dmitems / reference, median of {runs} run(s) [range]")
print(f"{'backend':<11}{'route':<26}{'req/s x':>22}{'p99 /':>22}  target")
verdicts = []
for backend in backends.split():
    for key, label in ROUTES:
        rps = [r for r, _ in ratios[backend, key]]
        p99s = [p for _, p in ratios[backend, key] if p == p]
        rps_median = statistics.median(rps)
        p99_median = statistics.median(p99s) if p99s else float("nan")
        span = lambda values, f: f"[{f(min(values))}-{f(max(values))}]" if len(values) > 1 else ""
        if key == "batch":
            target = "rows/s >= 50x"
            met = rps_median >= 50
        else:
            target = "req/s >= 3x, p99 <= 0.33"
            met = rps_median >= 3 and p99_median <= 1 / 3
        verdicts.append((f"{backend} {key}", met))
        print(f"{backend:<11}{label:<26}{f'{rps_median:.1f}x':>8}{span(rps, lambda v: f'{v:.1f}'):>14}"
              f"{fmt(p99_median):>8}{span(p99s, fmt) if p99s else '':>14}  {target}: {'met' if met else 'MISSED'}")
print("targets (medians): " + ", ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in verdicts))
PY
