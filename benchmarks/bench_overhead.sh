#!/usr/bin/env bash
# Is `dmitems bench --target http` a fast enough load generator?
#
# Starts one `dmitems serve` (SQLite, temporary directory), then drives the same
# endpoint (GET /livez: no database, so the server is as cheap as it gets) with
# `hey` and with `dmitems bench --target http --url ...` in the same run, and
# prints dmitems' throughput as a ratio of hey's.  Target: ratio >= 0.8.
#
# Usage: benchmarks/bench_overhead.sh [concurrency=100] [seconds=5]
# Needs: hey on PATH; dmitems installed (DMITEMS=path/to/dmitems to choose one).
set -euo pipefail

CONCURRENCY="${1:-100}"
SECONDS_PER_TOOL="${2:-5}"
DMITEMS="${DMITEMS:-dmitems}"
command -v hey >/dev/null || { echo "hey is not installed" >&2; exit 2; }

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:${PORT}"
export DMITEMS_DATABASE_URL="sqlite+aiosqlite:///${WORK}/overhead.db"

"$DMITEMS" serve --mode async --host 127.0.0.1 --port "$PORT" --init-db >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "$URL/livez" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$URL/livez" >/dev/null || { echo "server did not start:" >&2; tail -5 "$WORK/serve.log" >&2; exit 1; }

echo "endpoint: GET $URL/livez, concurrency $CONCURRENCY, ${SECONDS_PER_TOOL}s each, after 1s warm-up"
hey -z 1s -c "$CONCURRENCY" "$URL/livez" >/dev/null
HEY_RPS="$(hey -z "${SECONDS_PER_TOOL}s" -c "$CONCURRENCY" "$URL/livez" | awk '/Requests\/sec/ {print $2}')"

"$DMITEMS" bench --target http --url "$URL" --mix livez=1 --concurrency "$CONCURRENCY" \
  --duration "${SECONDS_PER_TOOL}s" --warmup 1s --quiet --json "$WORK/bench.json" >"$WORK/bench.log" 2>&1 \
  || { cat "$WORK/bench.log" >&2; exit 1; }
BENCH_RPS="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["runs"][0]["total"]["throughput_rps"])' "$WORK/bench.json")"

python3 - "$HEY_RPS" "$BENCH_RPS" <<'PY'
import sys
hey, bench = float(sys.argv[1]), float(sys.argv[2])
ratio = bench / hey
print(f"hey            {hey:10,.0f} req/s")
print(f"dmitems bench  {bench:10,.0f} req/s")
print(f"ratio          {ratio:10.2f}   (target >= 0.8) {'OK' if ratio >= 0.8 else 'BELOW TARGET'}")
PY
