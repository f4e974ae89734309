"""Run the real CLI in-process with a pinned terminal width."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        import json

        return json.loads(self.stdout)


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Outcome:
    from typer.testing import CliRunner

    from dmitems.cli import app

    runner = CliRunner()
    environment = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    environment.update(env or {})
    result = runner.invoke(app, list(args), input=input, env=environment, catch_exceptions=True)
    exception = result.exception
    if isinstance(exception, SystemExit):
        exception = None
    return Outcome(result.exit_code, result.stdout, result.stderr, exception)
