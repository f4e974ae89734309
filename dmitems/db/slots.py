"""A first-come, first-served counting gate for asyncio, with a timeout per wait.

The Database takes one of its pool's slots here before it asks SQLAlchemy's
async pool for a connection.  The pool waits on an ``asyncio.Queue``, which is
not FIFO under contention: a waiter woken for a returned connection is often
beaten to it by a newcomer and goes back to the end of the line, so a few
requests wait many times longer than the rest (p99 several times the median).

Here a freed slot is handed straight to the oldest waiter, and nobody gets a
slot while others wait.  It does what ``asyncio.Semaphore`` inside
``asyncio.timeout`` does, for a fraction of the cost per request: one future
and one timer per wait, nothing at all when a slot is free.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Slots:
    """``capacity`` slots; :meth:`take` waits in line (at most ``timeout`` s), :meth:`give` frees."""

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def take(self, timeout: float) -> None:
        """Take a slot, waiting behind everyone who came first; TimeoutError after ``timeout`` s."""
        if self._free and not self._waiters:
            self._free -= 1
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(timeout, self._expire, waiter)
        try:
            await waiter
        except BaseException:
            # Timed out or cancelled.  If a slot was handed over meanwhile, pass it on.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.give()
            raise
        finally:
            timer.cancel()

    def give(self) -> None:
        """Free a slot: straight to the oldest live waiter, if any."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    @staticmethod
    def _expire(waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError())

    @property
    def free(self) -> int:
        return self._free
