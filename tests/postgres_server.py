"""A throwaway PostgreSQL server for the test suite (real server, no mocks).

It uses Debian's binaries (initdb, pg_ctl).  initdb refuses to run as root,
so as root the server runs as the ``postgres`` system user, in a temporary
directory it owns, on a free port on 127.0.0.1.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "dmitems"
PASSWORD = "pg-test-secret-9f3b"


def find_bindir() -> Path | None:
    explicit = os.environ.get("DMITEMS_TEST_PG_BIN")
    if explicit:
        return Path(explicit)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    bindir: Path
    workdir: Path
    port: int
    user: str | None  # system user the server runs as, or None for the current one
    extra_options: str = ""  # more postgres -c settings, after the defaults (they win)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    def url(self, database: str = "postgres", driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://{SUPERUSER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        pwfile = self.workdir / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.user:
            record = pwd.getpwnam(self.user)
            for path in (self.workdir, pwfile):
                os.chown(path, record.pw_uid, record.pw_gid)
        self._run(
            str(self.bindir / "initdb"),
            "-D", str(self.datadir),
            "-U", SUPERUSER,
            "--pwfile", str(pwfile),
            "-A", "scram-sha-256",
            "-E", "UTF8",
            "--locale", "C",
            "--no-sync",
        )
        self.resume()

    def options(self) -> str:
        return (
            f"-p {self.port} -h 127.0.0.1 -k {self.workdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            f"-c max_connections=300 -c shared_buffers=64MB {self.extra_options}"
        ).strip()

    def resume(self) -> None:
        """Start the server on its existing data directory (after :meth:`halt`)."""
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D", str(self.datadir),
            "-l", str(self.workdir / "log"),
            "-o", self.options(),
            "-w",
            "-t", "60",
            "start",
        )

    def halt(self) -> None:
        """Stop as a crash would (``-m immediate``), keeping the data directory."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop")

    def pids(self) -> list[int]:
        """The postmaster and every process it started."""
        import psutil

        postmaster = int((self.datadir / "postmaster.pid").read_text().split()[0])
        children = psutil.Process(postmaster).children(recursive=True)
        return [postmaster, *(child.pid for child in children)]

    def stop(self) -> None:
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop",
            check=False,
        )
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            return (self.workdir / "log").read_text()[-2000:]
        except OSError:
            return ""


def start_server(extra_options: str = "") -> PostgresServer:
    bindir = find_bindir()
    if bindir is None:
        raise FileNotFoundError(
            "PostgreSQL binaries not found (install Debian's postgresql, "
            "or set DMITEMS_TEST_PG_BIN)"
        )
    user = "postgres" if os.geteuid() == 0 else None
    workdir = Path(tempfile.mkdtemp(prefix="dmitems-pg-"))
    os.chmod(workdir, 0o700)
    server = PostgresServer(
        bindir=bindir, workdir=workdir, port=free_port(), user=user, extra_options=extra_options
    )
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        log = server.log_tail()
        server.stop()
        raise RuntimeError(f"PostgreSQL failed to start: {exc.stderr}\n{log}") from exc
    return server
