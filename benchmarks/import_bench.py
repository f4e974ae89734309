"""Import speed and memory against the raw drivers, measured in the same run.

    python benchmarks/import_bench.py                 # 1,000,000 rows, SQLite + PostgreSQL
    python benchmarks/import_bench.py --rows 100000 --batch-sizes 1000,5000,20000
    python benchmarks/import_bench.py --pg-url postgresql://user:pw@127.0.0.1/db

It generates the rows with ``dmitems item generate`` (CSV), then for each
backend runs ``dmitems item import`` as a child process on a fresh items
table and reads its summary (rows/s includes reading, parsing and
validation) and its peak RSS: the VmHWM of the import process plus that
of its reader process (files >= 32 MiB are parsed in a second process,
dmitems.importer.process).  ``--compare-reader`` also imports with the
reader thread instead (the threshold raised for that run), alternating with
the process in the same run: the reader process stays only while it buys
>= 20 % rows/s (issue 12).  The reference is the raw driver
loading the same rows, already in memory as tuples, into the same table:
``sqlite3`` ``executemany`` in one transaction, and asyncpg
``copy_records_to_table``.  Without ``--pg-url`` a throwaway PostgreSQL
server is started with the test suite's helper (needs Debian's binaries).

Targets (issue 4): SQLite >= 0.25x raw, PostgreSQL >= 0.3x COPY, RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"sqlite": 0.25, "postgresql": 0.30}
RSS_LIMIT_MB = 200


def _peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


# `python -c` program: dmitems' CLI with every file read on the reader thread.
THREAD_ONLY = (
    "import sys; import dmitems.importer.process as p; p.PROCESS_THRESHOLD = 1 << 62; "
    "sys.argv[0] = 'dmitems'; from dmitems.cli import main; main()"
)


def dmitems(
    *args: str, url: str | None = None, thread: bool = False
) -> tuple[dict | None, float, str]:
    """Run the dmitems CLI; return (JSON output or None, peak RSS in MB, stderr).

    Peak RSS is the sum of the high-water marks (VmHWM) of the child and of
    every process it starts (the import's reader), sampled until it exits: an
    upper bound of their memory at any one moment.  getrusage/wait4 would
    report this process's memory, which a forked child inherits in its ru_maxrss.
    """
    command = [sys.executable, "-c", THREAD_ONLY] if thread else [sys.executable, "-m", "dmitems"]
    if url:
        command += ["--url", url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMITEMS_")}
    peaks: dict[int, float] = {}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen([*command, *args], stdout=out, stderr=err, env=env, cwd=ROOT)
        while process.poll() is None:
            for pid in (process.pid, *_children(process.pid)):
                peaks[pid] = max(peaks.get(pid, 0.0), _peak_rss_mb(pid) or 0.0)
            time.sleep(0.02)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    peak = sum(peaks.values())
    if process.returncode != 0:
        raise SystemExit(f"dmitems {' '.join(args)} failed ({process.returncode}): {stderr}")
    data = json.loads(stdout) if stdout.strip().startswith("{") else None
    return data, peak, stderr


def load_rows(path: Path) -> list[tuple[str, str | None, int]]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        return [(name, description or None, int(price)) for name, description, price in reader]


def raw_sqlite(path: Path, rows: list[tuple[str, str | None, int]]) -> float:
    """sqlite3 executemany in one transaction into a fresh dmitems items table; rows/s."""
    dmitems("init-db", url=f"sqlite+aiosqlite:///{path}")
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    started = time.perf_counter()
    with connection:
        connection.executemany(
            "INSERT INTO items (name, description, price) VALUES (?, ?, ?)", rows
        )
    elapsed = time.perf_counter() - started
    connection.close()
    return len(rows) / elapsed


def raw_copy(url: str, rows: list[tuple[str, str | None, int]]) -> float:
    """asyncpg copy_records_to_table into a fresh dmitems items table; rows/s."""
    import asyncpg

    dmitems("init-db", "--drop", "--yes", url=url)

    async def run() -> float:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            started = time.perf_counter()
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "items", records=rows, columns=["name", "description", "price"]
                )
            return len(rows) / (time.perf_counter() - started)
        finally:
            await connection.close()

    return asyncio.run(run())


def dmitems_import(
    url: str, data: Path, batch_size: int, fresh: list[str], thread: bool = False
) -> tuple[float, float]:
    dmitems(*fresh, url=url)
    summary, rss, _ = dmitems(
        "item", "import", str(data), "--quiet", "--json", "--batch-size", str(batch_size), url=url,
        thread=thread,
    )
    assert summary is not None and summary["outcome"] == "ok", summary
    return summary["rows_per_second"], rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-sizes", default="10000", help="comma-separated, e.g. 1000,5000")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best is kept")
    parser.add_argument("--pg-url", help="use this PostgreSQL (its items table is dropped)")
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument("--compare-reader", action="store_true",
                        help="also import with the reader thread instead of the reader process "
                             "(files of 32 MiB and more, about 350,000 rows, use the process)")
    options = parser.parse_args()
    batch_sizes = [int(size) for size in options.batch_sizes.split(",")]

    work = Path(tempfile.mkdtemp(prefix="dmitems-import-bench-"))
    data = work / "items.csv"
    started = time.perf_counter()
    dmitems("item", "generate", str(options.rows), "-o", str(data), "--seed", "1", "--quiet")
    print(f"generated {options.rows:,} rows ({data.stat().st_size / 1e6:.0f} MB CSV) "
          f"in {time.perf_counter() - started:.1f} s")
    rows = load_rows(data)

    server = None
    targets: list[tuple[str, str, list[str]]] = []
    targets.append(("sqlite", f"sqlite+aiosqlite:///{work / 'bench.db'}", ["init-db"]))
    if not options.skip_postgresql:
        pg_url = options.pg_url
        if pg_url is None:
            sys.path.insert(0, str(ROOT))
            from tests.postgres_server import start_server

            server = start_server()
            pg_url = server.url("postgres")
        targets.append(("postgresql", pg_url, ["init-db", "--drop", "--yes"]))

    results = []
    try:
        for backend, url, fresh in targets:
            for batch_size in batch_sizes:
                result = measure(backend, url, fresh, data, rows, batch_size, options)
                results.append(result)
                _, _, ours, raw, peak, thread = result
                print(f"{backend:<10} batch {batch_size:>6,}: dmitems {ours:>10,.0f} rows/s  "
                      f"raw {raw:>10,.0f} rows/s  ratio {ours / raw:.2f}  "
                      f"peak RSS {peak:.0f} MB"
                      + (f"  reader thread {thread:,.0f} rows/s" if thread else ""), flush=True)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    report(results)


def measure(
    backend: str, url: str, fresh: list[str], data: Path, rows: list, batch_size: int,
    options: argparse.Namespace,
) -> tuple[str, int, float, float, float, float]:
    """Best of ``--repeat`` runs: (backend, batch, dmitems, raw, peak RSS, reader thread)."""
    best_ours, best_raw, peak, best_thread = 0.0, 0.0, 0.0, 0.0
    db_file = data.parent / "bench.db"
    readers = (False, True) if options.compare_reader else (False,)
    for _ in range(options.repeat):
        if backend == "sqlite":
            db_file.unlink(missing_ok=True)
            best_raw = max(best_raw, raw_sqlite(db_file, rows))
        else:
            best_raw = max(best_raw, raw_copy(url, rows))
        for thread in readers:  # the reader process (the default for big files), then the thread
            if backend == "sqlite":
                db_file.unlink(missing_ok=True)
            ours, rss = dmitems_import(url, data, batch_size, fresh, thread=thread)
            if thread:
                best_thread = max(best_thread, ours)
            else:
                best_ours, peak = max(best_ours, ours), max(peak, rss)
    return backend, batch_size, best_ours, best_raw, peak, best_thread


def report(results: list[tuple[str, int, float, float, float, float]]) -> None:
    print()
    print(f"{'backend':<11}{'batch':>7}{'dmitems rows/s':>16}{'raw rows/s':>13}"
          f"{'ratio':>7}{'target':>8}{'peak RSS':>10}")
    for backend, batch_size, ours, raw, peak, thread in results:
        ratio = ours / raw
        verdict = "ok" if ratio >= TARGETS[backend] and peak < RSS_LIMIT_MB else "MISSED"
        print(f"{backend:<11}{batch_size:>7,}{ours:>16,.0f}{raw:>13,.0f}{ratio:>7.2f}"
              f"{TARGETS[backend]:>8.2f}{peak:>7.0f} MB  {verdict}")
    print("raw = sqlite3 executemany in one transaction / asyncpg copy_records_to_table, "
          "same table, same rows, this run")
    compared = [result for result in results if result[5]]
    if compared:
        print()
        print(f"{'backend':<11}{'batch':>7}{'process rows/s':>16}{'thread rows/s':>15}{'gain':>8}")
        for backend, batch_size, ours, _, _, thread in compared:
            gain = ours / thread - 1
            print(f"{backend:<11}{batch_size:>7,}{ours:>16,.0f}{thread:>15,.0f}{gain:>+8.0%}"
                  f"  {'keep' if gain >= 0.20 else 'below the 20 % rule'}")


if __name__ == "__main__":
    main()
