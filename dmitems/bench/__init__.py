"""Sync vs async benchmarks: load models, recorders, targets, instruments, results and reports.

Entry point: :func:`dmitems.bench.runner.run_benchmark`.  Heavy modules
(hdrhistogram, aiohttp, SQLAlchemy) are imported where they are used.
"""
