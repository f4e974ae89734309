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

Besides callers that wait in :meth:`take`, a turn can be queued for a callback
(:meth:`when_free`): the DM read relay (:mod:`dmitems.db.relay`) lines up that
way, reads :attr:`Slots.outside` to see whether anyone else is waiting, and
hears of every slot that comes free with nobody waiting (:attr:`Slots.on_free`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class Slots:
    """``capacity`` slots; :meth:`take` waits in line (at most ``timeout`` s), :meth:`give` frees."""

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        # (future, outside): outside for callers in take(), not for when_free() turns.
        self._waiters: deque[tuple[asyncio.Future[None], bool]] = deque()
        # Callers waiting inside take() and not yet handed a slot (nor timed out).
        self.outside = 0
        # Called (on the loop) whenever a slot comes free with nobody waiting for it.
        self.on_free: Callable[[], None] | None = None

    async def take(self, timeout: float) -> None:
        """Take a slot, waiting behind everyone who came first; TimeoutError after ``timeout`` s."""
        if self._free and not self._waiters:
            self._free -= 1
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append((waiter, True))
        timer = loop.call_later(timeout, self._expire, waiter)
        self.outside += 1
        try:
            await waiter
        except BaseException:
            # Timed out or cancelled.  If a slot was handed over meanwhile, pass it on.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.give()
            raise
        finally:
            timer.cancel()
            if waiter.cancelled():  # handed over or expired: counted down there
                self.outside -= 1

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody waits; never waits."""
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    def when_free(self, granted: Callable[[], None]) -> None:
        """Queue a turn in the line: ``granted()`` runs (soon, on the loop) holding a slot.

        No timeout: the caller gives the slot back if it no longer needs it.
        """
        loop = asyncio.get_running_loop()
        if self.try_take():
            loop.call_soon(granted)
            return
        turn: asyncio.Future[None] = loop.create_future()
        turn.add_done_callback(lambda _turn: granted())
        self._waiters.append((turn, False))

    def give(self) -> None:
        """Free a slot: straight to the oldest live waiter, if any."""
        while self._waiters:
            waiter, outside = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if outside:
                    self.outside -= 1
                return
        self._free += 1
        if self.on_free is not None:
            self.on_free()

    def _expire(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError())
            self.outside -= 1

    @property
    def free(self) -> int:
        return self._free
