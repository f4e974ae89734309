#!/usr/bin/env bash
# How long does dmitems take to start?  Whole processes, each against a reference
# timed in the same rounds:
#
#   dmitems --help                      vs  python -c "import typer, rich"      target <= 2.0x
#   dmitems item list --limit 10        vs  sqlite-utils rows FILE items        target <= 2.5x
#     (on a SQLite file)                        --limit 10
#
# The script makes a SQLite database of 5,000 items in a temporary directory, runs
# every command once to check that it works, then runs ROUNDS rounds.  A round runs
# each command once, in an order that rotates from round to round, so a burst of
# load on a shared machine lands on both sides of a pair alike.  A ratio is the
# median over rounds of (dmitems / reference) within the round.
#
# Usage: benchmarks/startup.sh [rounds=40]
#   DMITEMS=path/to/dmitems   the build to measure (default: .venv/bin/dmitems of this
#                             checkout, else dmitems on PATH).  The references run on
#                             the interpreter of its #! line.
#   BASELINE=path/to/dmitems  also time this other build in the same rounds, e.g. a
#                             worktree of main, to compare before and after.
# Needs: sqlite-utils in dmitems' environment or on PATH (pip install -e '.[bench]').
# Exit status: 0 when both targets hold for DMITEMS, 1 when one does not, 2 on set-up errors.
set -euo pipefail

ROUNDS="${1:-40}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${DMITEMS:-}" ]; then
  if [ -x "$ROOT/.venv/bin/dmitems" ]; then DMITEMS="$ROOT/.venv/bin/dmitems"; else DMITEMS="$(command -v dmitems || true)"; fi
fi
[ -x "$DMITEMS" ] || { echo "dmitems not found: install it (pip install -e .) or set DMITEMS" >&2; exit 2; }
PYTHON="$(head -1 "$DMITEMS" | sed 's/^#! *//')"
BIN="$(dirname "$DMITEMS")"
SQLITE_UTILS="$BIN/sqlite-utils"
[ -x "$SQLITE_UTILS" ] || SQLITE_UTILS="$(command -v sqlite-utils || true)"
[ -n "$SQLITE_UTILS" ] || { echo "sqlite-utils not found: $BIN/pip install sqlite-utils (or -e '.[bench]')" >&2; exit 2; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"  # no dmitems.toml of the caller's directory applies
unset DMITEMS_CONFIG DMITEMS_DATABASE_URL
URL="sqlite+aiosqlite:///$WORK/items.db"
"$DMITEMS" --url "$URL" init-db >/dev/null
"$DMITEMS" item generate 5000 --seed 1 --quiet -o items.csv >/dev/null 2>&1
"$DMITEMS" --url "$URL" item import items.csv --quiet >/dev/null

"$PYTHON" - "$ROUNDS" "$PYTHON" "$SQLITE_UTILS" "$URL" "$WORK/items.db" "$DMITEMS" "${BASELINE:-}" <<'PY'
import os
import statistics
import subprocess
import sys
import time

rounds, python, sqlite_utils, url, db_file, dmitems, baseline = sys.argv[1:]
rounds = int(rounds)

commands = {
    "typer": [python, "-c", "import typer, rich"],
    "sqlite-utils": [sqlite_utils, "rows", db_file, "items", "--limit", "10"],
}
builds = {"dmitems": dmitems}
if baseline:
    builds["baseline"] = baseline
for build, path in builds.items():
    commands[f"{build} help"] = [path, "--help"]
    commands[f"{build} list"] = [path, "--url", url, "item", "list", "--limit", "10"]


def run(argv):
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed (exit {done.returncode}): {done.stderr.decode()[-500:]}")
    return elapsed


names = list(commands)
for name in names:  # warm the file cache and check that each command works
    run(commands[name])
times = {name: [] for name in names}
for r in range(rounds):
    shift = r % len(names)
    for name in names[shift:] + names[:shift]:
        times[name].append(run(commands[name]))

print(f"{rounds} rounds, commands interleaved; median wall time of the whole process")
labels = {
    "typer": "python -c 'import typer, rich'",
    "sqlite-utils": "sqlite-utils rows items.db items --limit 10",
}
for name in names:
    build, _, what = name.partition(" ")
    label = labels.get(name) or ("baseline " if build == "baseline" else "") + (
        "dmitems --help" if what == "help" else "dmitems item list --limit 10"
    )
    print(f"  {label:<48} {statistics.median(times[name]) * 1000:7.1f} ms")


def ratio(name, reference):
    return statistics.median(a / b for a, b in zip(times[name], times[reference]))


print()
failed = False
for build in builds:
    for what, reference, target in (("help", "typer", 2.0), ("list", "sqlite-utils", 2.5)):
        value = ratio(f"{build} {what}", reference)
        verdict = "PASS" if value <= target else "FAIL"
        failed |= build == "dmitems" and verdict == "FAIL"
        left = "--help / import typer, rich" if what == "help" else "item list / sqlite-utils rows"
        print(f"  {build + ':':<10} {left:<30} {value:5.2f}x  (target <= {target}x)  {verdict}")
sys.exit(1 if failed else 0)
PY
