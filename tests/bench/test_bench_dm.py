"""``dmitems bench`` on DM over the driver double prints dmitems' own lines and nothing else
(no "Unclosed connection" from connections a pool left open)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.dm_driver_double import DOUBLE_DIR

OWN_STDERR = ("warning: ", "bench rows ", "runs; ", "changed.", "error: ")


@pytest.mark.parametrize("target", ["db", "http"])
def test_dm_run_prints_only_dmitems_lines(tmp_path, target) -> None:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(DOUBLE_DIR), os.environ.get("PYTHONPATH", "")]),
        "DMPYTHON_DOUBLE_DB": str(tmp_path / "dm.db"),
        "DMPYTHON_DOUBLE_LATENCY": "0.001",
        "COLUMNS": "80",
        "DMITEMS_DATABASE_POOL_SIZE": "3",
    }
    environment.pop("DMITEMS_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "dmitems", "--url", "dm+dmAsync://SYSDBA:secret@127.0.0.1:5236",
         "bench", "--target", target, "--concurrency", "8", "--duration", "0.5s",
         "--warmup", "0.2s", "--quiet"],
        env=environment, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    for noise in ("Unclosed", "connection: <", "ResourceWarning", "Traceback", "Exception ignored"):
        assert noise not in output, output
    for line in done.stderr.splitlines():
        assert line.startswith(OWN_STDERR), line
    assert "Where the time goes" in done.stdout
