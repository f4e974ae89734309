"""Every command against a closed DM port, with the REAL dmPython driver (not a double).

Nothing listens on 127.0.0.1:5236 here, so the driver gets "Create SOCKET
connection failure" (-70028): each command must end in one line on stderr,
exit 3, within the login timeout, and never print the password.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PASSWORD = "Closed_port_pw9"
URL = f"dm+dmAsync://SYSDBA:{PASSWORD}@127.0.0.1:5236"
LOGIN_TIMEOUT = 5
COMMANDS = [
    ["init-db"],
    ["item", "add", "--name", "a", "--price", "1"],
    ["item", "get", "1"],
    ["item", "list", "--json"],
    ["item", "update", "1", "--price", "2"],
    ["item", "delete", "1", "--yes"],
    ["doctor", "--json"],
    ["--url", URL.replace("dmAsync", "dmPython"), "init-db"],
]


def _port_is_closed() -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", 5236)) != 0


@pytest.mark.skipif(not _port_is_closed(), reason="something listens on 127.0.0.1:5236")
def test_every_command_fails_in_one_line_with_exit_3(tmp_path) -> None:
    pytest.importorskip("dmPython")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMITEMS_")}
    env.update(DMITEMS_DM_LOGIN_TIMEOUT=str(LOGIN_TIMEOUT), COLUMNS="200", NO_COLOR="1")
    running = [
        (
            args,
            subprocess.Popen(
                [sys.executable, "-m", "dmitems", "--url", URL, *args],
                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            ),
        )
        for args in COMMANDS
    ]
    for args, process in running:
        # A hang guard, not a speed check: generous, since a loaded machine is slow to start Python.
        stdout, stderr = process.communicate(timeout=LOGIN_TIMEOUT * 24)
        assert process.returncode == 3, (args, stdout, stderr)
        assert stderr.count("\n") == 1 and stderr.startswith("error:"), (args, stderr)
        assert "-70028" in stderr, (args, stderr)
        assert PASSWORD not in stdout + stderr, args
        assert "Traceback" not in stdout + stderr
