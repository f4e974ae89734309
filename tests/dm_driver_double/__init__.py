"""The dmPython DRIVER DOUBLE (see ``dmPython.py`` here) and helpers to use it.

Only the DM *driver module* is doubled, because no DM server can run here; the
real dmAsync and dmSQLAlchemy packages run unmodified on top of it.

* :func:`installed` swaps the double in for ``dmPython`` inside this process
  (and reloads dmAsync, dmSQLAlchemy and dmitems' dialect so they bind to it), then restores the
  real modules.
* :data:`DOUBLE_DIR` put first on ``PYTHONPATH`` makes a subprocess use it.
* :class:`LoopLagMonitor` measures how long the event loop was kept from running.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

DOUBLE_DIR = Path(__file__).resolve().parent
_DRIVER_PACKAGES = ("dmPython", "dmAsync", "dmSQLAlchemy")
# dmitems' dialect subclasses dmSQLAlchemy's classes: it is reloaded with them.
_DIALECT_MODULE = "dmitems.db.dm_dialect"


def _driver_modules() -> dict[str, ModuleType]:
    return {
        name: module
        for name, module in sys.modules.items()
        if name.split(".")[0] in _DRIVER_PACKAGES or name == _DIALECT_MODULE
    }


def _swap(modules: dict[str, ModuleType]) -> None:
    """Replace every driver module (and dmitems' dialect) in ``sys.modules`` with ``modules``.

    SQLAlchemy's dialect registry finds the dialect module as an attribute of its
    package, so that attribute follows too.
    """
    for name in list(_driver_modules()):
        del sys.modules[name]
    sys.modules.update(modules)
    package = sys.modules.get(_DIALECT_MODULE.rpartition(".")[0])
    attribute = _DIALECT_MODULE.rpartition(".")[2]
    if package is not None:
        if _DIALECT_MODULE in modules:
            setattr(package, attribute, modules[_DIALECT_MODULE])
        elif hasattr(package, attribute):
            delattr(package, attribute)


@contextlib.contextmanager
def installed() -> Iterator[ModuleType]:
    """Use the driver double as ``dmPython`` for the duration of the block."""
    saved = _driver_modules()
    _swap({})
    sys.path.insert(0, str(DOUBLE_DIR))
    try:
        double = importlib.import_module("dmPython")
        assert getattr(double, "DOUBLE", False), "the real dmPython was imported, not the double"
        double.reset()
        yield double
    finally:
        sys.path.remove(str(DOUBLE_DIR))
        if "dmPython" in sys.modules and getattr(sys.modules["dmPython"], "DOUBLE", False):
            sys.modules["dmPython"].reset()
        _swap(saved)


class LoopLagMonitor:
    """Ticks every ``interval`` seconds on the running loop and keeps the worst lateness."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.interval)
            late = time.perf_counter() - started - self.interval
            self.worst = max(self.worst, late)

    async def __aenter__(self) -> LoopLagMonitor:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
