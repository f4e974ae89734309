"""Closing an async connection without a task of its own when closing does no I/O.

SQLAlchemy's ``async with engine.connect()`` closes the connection in a new
task and waits for it through ``asyncio.shield``, so that a cancelled caller
cannot abandon a rollback half-way and return a connection mid-statement.
That costs a task and three extra turns of the event loop per request, on
every request, even when closing sends nothing to the server: a connection
used outside a transaction, or one whose read already ended its own (the
API's direct paths, :mod:`dmitems.db.direct`).  Under load those turns are
where a returned connection waits before the next request can take it.

:func:`close` starts closing inline.  If that finishes without waiting for
anything, there is nothing to protect and it is done.  If it does wait (a
rollback on the server), the rest of the close runs as SQLAlchemy runs it: in
a task of its own, which a cancellation of the caller does not stop, and the
caller's cancellation is re-raised once the close is complete.  (Unlike
SQLAlchemy's, the first step runs in the caller's context variables rather
than a copy; nothing in closing reads them.)
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


async def close(connection: AsyncConnection) -> None:
    """``connection.close()``: inline when it does not wait, else to completion in a task."""
    task = start(connection.close())
    if task is None:
        return
    cancelled = await see_through(task)
    if cancelled is not None:
        raise cancelled


def start(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Future[Any] | None:
    """Run ``coroutine`` inline up to its first wait; None if it finished without one,
    else the task that finishes it."""
    try:
        pending = coroutine.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_finish(coroutine, pending))


async def see_through(future: asyncio.Future[Any]) -> asyncio.CancelledError | None:
    """Wait until ``future`` is done even if the caller is cancelled meanwhile.

    Returns the caller's cancellation, if one came, for the caller to raise once
    it has done its part; raises what ``future`` raised.
    """
    cancelled = None
    while True:
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError as error:
            if future.done():
                raise
            cancelled = error
        else:
            return cancelled


async def _finish(coroutine: Coroutine[Any, Any, Any], pending: Any) -> Any:
    return await _resume(coroutine, pending)


@types.coroutine
def _resume(coroutine: Coroutine[Any, Any, Any], pending: Any) -> Generator[Any, Any, Any]:
    """Drive ``coroutine``, which has already started and is waiting on ``pending``.

    The task running this hands ``pending`` (a future) to the event loop as if
    ``coroutine`` had yielded it to the task itself, and passes on to it what
    the task sends or throws in when the future is done.
    """
    while True:
        try:
            yield pending
        except BaseException as error:  # noqa: BLE001 - passed on, as ``await`` would
            try:
                pending = coroutine.throw(error)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                pending = coroutine.send(None)
            except StopIteration as stop:
                return stop.value
