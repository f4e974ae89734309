"""``dmitems serve`` subprocesses for the HTTP target: started on free ports, always stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, TYPE_CHECKING

from dmitems.errors import DmitemsError

if TYPE_CHECKING:
    from dmitems.config import Settings

START_TIMEOUT = 60.0


class ServerFailed(DmitemsError):
    """``dmitems serve`` did not come up; exit code as documented for the cause, else 1."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_environment(settings: Settings) -> dict[str, str]:
    """The resolved database settings, passed by environment (never on the command line)."""
    env = dict(os.environ)
    env["DMITEMS_DATABASE_URL"] = settings.database_url
    env["DMITEMS_DATABASE_POOL_SIZE"] = str(settings.database_pool_size)
    env["DMITEMS_DATABASE_MAX_OVERFLOW"] = str(settings.database_max_overflow)
    env["DMITEMS_DATABASE_POOL_TIMEOUT"] = str(settings.database_pool_timeout)
    if settings.database_password is not None:
        env["DMITEMS_DATABASE_PASSWORD"] = settings.database_password.get_secret_value()
    return env


class ServeProcess:
    """One ``dmitems serve --mode MODE`` on 127.0.0.1 and a free port."""

    def __init__(self, mode: str, settings: Settings, config_path: Path | None) -> None:
        self.mode = mode
        self.settings = settings
        self.config_path = config_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "dmitems"]
        if self.config_path is not None:
            command += ["--config", str(self.config_path)]
        return command + [
            "serve", "--mode", self.mode, "--host", "127.0.0.1", "--port", str(self.port),
        ]

    def start(self, timeout: float = START_TIMEOUT) -> ServeProcess:
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=server_environment(self.settings),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise ServerFailed(
                    f"`dmitems serve --mode {self.mode}` exited with code {code}: "
                    f"{self._last_line()}",
                    exit_code=code if code in (2, 3) else 1,
                )
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise ServerFailed(f"`dmitems serve --mode {self.mode}` did not answer within {timeout:g} s")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/livez", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _last_line(self) -> str:
        assert self.log is not None
        self.log.seek(0)
        lines = [line.strip() for line in self.log.read().decode(errors="replace").splitlines()]
        last = next((line for line in reversed(lines) if line), "no output")
        return self.settings.redact(last)[:300]

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None
