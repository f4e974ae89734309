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
import threading
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


# -- the sync twin ---------------------------------------------------------------


class SyncSlots:
    """The same first-come, first-served line for threads (the sync engine's pool).

    SQLAlchemy's ``QueuePool`` waits on a condition variable, which wakes no
    particular waiter: under threads a newcomer often takes the connection a
    woken waiter was woken for, so a few threads wait for the whole
    ``pool_timeout`` while the rest never wait.  Here each waiter sleeps on its own
    event, a freed slot goes straight to the oldest one, and nobody takes a slot
    while others wait.  The same ``pool_timeout`` applies; TimeoutError after it.
    """

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        self._lock = threading.Lock()
        self._waiters: deque[_Turn] = deque()

    def take(self, timeout: float) -> None:
        """Take a slot, waiting behind every thread that came first."""
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            turn = _Turn()
            self._waiters.append(turn)
        if turn.event.wait(timeout):
            return
        with self._lock:
            if turn.granted:  # handed over just as the wait ran out: keep it
                return
            self._waiters.remove(turn)
        raise TimeoutError()

    def give(self) -> None:
        """Free a slot: straight to the oldest waiter, if any."""
        with self._lock:
            if self._waiters:
                turn = self._waiters.popleft()
                turn.granted = True
                turn.event.set()
                return
            self._free += 1

    @property
    def free(self) -> int:
        return self._free

    @property
    def waiting(self) -> int:
        return len(self._waiters)


class _Turn:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.granted = False


class NoLine:
    """``pool_queue = "native"``: no line of dmitems' own, for either mode.

    Callers wait in the pool itself, newcomers barging past woken waiters included:
    what a plain SQLAlchemy application gets.
    """

    def take(self, timeout: float) -> None:
        """Nothing to wait for here (the pool applies ``pool_timeout`` itself)."""

    def give(self) -> None:
        """Nothing to give back."""


NO_LINE = NoLine()
