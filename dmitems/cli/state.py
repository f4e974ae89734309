"""What the global options decide, shared by every command through the Typer context."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from dmitems.config import Settings
    from dmitems.db import Database

T = TypeVar("T")


@dataclass
class CliState:
    config_path: Path | None = None
    url: str | None = None
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self, **flags: Any) -> Settings:
        """The effective settings: command flags win over the environment and the file."""
        from dmitems.config import load_settings

        if self._settings is None or flags:
            if self.url is not None:
                flags.setdefault("database_url", self.url)
            self._settings = load_settings(self.config_path, flags)
        return self._settings

    def secrets(self) -> list[str]:
        from dmitems.config import url_secrets

        found = self._settings.secrets() if self._settings is not None else []
        # --url's secrets count even when the settings could not be built from it.
        return found + url_secrets(self.url or "")

    def redact(self, text: str) -> str:
        from dmitems.errors import redact

        return redact(text, self.secrets())


def state_of(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def with_database(
    ctx: typer.Context,
    work: Callable[[Database], Awaitable[T]],
    **flags: Any,
) -> T:
    """Run ``work`` on a fresh event loop with the configured database; always dispose."""
    from dmitems.db import Database

    settings = state_of(ctx).settings(**flags)

    async def main() -> T:
        database = Database(settings)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return run(main())


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` with Python 3.11's Ctrl-C behaviour on every supported Python.

    From 3.11 a Ctrl-C cancels the main task, so the command's own clean-up (rolling
    back an import, removing benchmark rows) runs and says what it did.  Python 3.10
    raises KeyboardInterrupt wherever the loop happens to be and then cancels the
    task during shutdown, printing the task's error as a traceback; here the same
    cancellation is arranged by hand.
    """
    import asyncio  # here, not at the top: `dmitems --help` needs no event loop

    from dmitems.db.loops import owned

    if sys.version_info >= (3, 11):
        return asyncio.run(owned(coroutine))  # the CLI's own loop: dmitems sizes its executor

    async def main() -> T:
        import signal

        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        with contextlib.suppress(NotImplementedError, RuntimeError):  # e.g. not the main thread
            loop.add_signal_handler(signal.SIGINT, task.cancel)
        return await coroutine

    try:
        return asyncio.run(owned(main()))
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
