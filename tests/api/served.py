"""`dmitems serve` as a real subprocess, for the tests that need a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx

from tests.postgres_server import free_port


def start(url: str, *args: str, env: dict[str, str] | None = None) -> tuple[Any, str]:
    port = free_port()
    environment = {**os.environ, "DMITEMS_DATABASE_URL": url, **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "dmitems", "serve", "--port", str(port), "--init-db", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early: {process.communicate()}")
        try:
            if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("serve did not start")


def stop(process: Any) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    return process.returncode, stderr
