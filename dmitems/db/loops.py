"""The event loops dmitems runs itself, and the size of their default executor.

dmAsync runs every driver call through ``asyncio.to_thread``, that is on the
running loop's default executor, which asyncio makes with ``min(32, cpu_count
+ 4)`` threads (6 on two cores).  With a pool of 30 DM connections, at most 6
queries are then in flight; the rest of the pool sits idle.

dmitems sizes that executor only in the event loops it owns: the CLI's own loop
(every command, ``bench`` included), ``dmitems serve``'s loops and ``bench``'s
load processes.  Each of those marks its loop with :func:`own` (or runs its
main coroutine through :func:`owned`); when a DM engine is built in a marked
loop, :func:`size_executor` gives it ``loop.set_default_executor(
ThreadPoolExecutor(n))``, the documented way.  A loop that dmitems does not own
(an application that embeds dmitems' app or ``Database``, a test's loop) is
left as it is: its owner sizes it, before the first connection::

    loop.set_default_executor(ThreadPoolExecutor(max_workers=executor_threads(settings)))

dmitems knows the size of the executors it installed (:func:`sized_threads`);
it never reads an executor's or a loop's private state.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from dmitems.config import Settings

T = TypeVar("T")

# What asyncio's default executor gets when nobody sets one (ThreadPoolExecutor's default).
UPSTREAM_THREADS = min(32, (os.cpu_count() or 1) + 4)

_owned: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
# loop -> (threads, the executor dmitems installed in it)
_sized: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[int, ThreadPoolExecutor]] = (
    weakref.WeakKeyDictionary()
)


def own(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Mark ``loop`` (default: the running one) as dmitems' own: its executor may be sized."""
    _owned.add(loop or asyncio.get_running_loop())


async def owned(work: Awaitable[T]) -> T:
    """Run ``work`` in the running loop, marked as dmitems' own: ``asyncio.run(owned(main()))``."""
    own()
    return await work


def owns(loop: asyncio.AbstractEventLoop) -> bool:
    return loop in _owned


def executor_threads(settings: Settings) -> int:
    """Threads the async DM driver needs: dm.executor_threads, or pool capacity + a margin."""
    if settings.dm_executor_threads:
        return settings.dm_executor_threads
    capacity = settings.pool_capacity
    return capacity + max(4, capacity // 4)


def size_executor(settings: Settings, loop: asyncio.AbstractEventLoop | None = None) -> int | None:
    """In a loop dmitems owns, make its default executor at least :func:`executor_threads`.

    Returns the threads dmitems installed in ``loop``, or None for a loop it does not
    own (left untouched).  A smaller executor installed earlier by dmitems is replaced
    (and shut down once its calls are done).
    """
    from concurrent.futures import ThreadPoolExecutor

    loop = loop or asyncio.get_running_loop()
    if not owns(loop):
        return None
    wanted = executor_threads(settings)
    threads, earlier = _sized.get(loop, (0, None))
    if threads < wanted:
        executor = ThreadPoolExecutor(max_workers=wanted, thread_name_prefix="dmitems-db")
        loop.set_default_executor(executor)
        _sized[loop] = (wanted, executor)
        if earlier is not None:
            earlier.shutdown(wait=False)
    return sized_threads(loop)


def sized_threads(loop: asyncio.AbstractEventLoop) -> int | None:
    """Threads of the default executor dmitems installed in ``loop``, or None if it did not."""
    sized = _sized.get(loop)
    return sized[0] if sized is not None else None
