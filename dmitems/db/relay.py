"""DM reads handed on from connection to connection by the worker threads.

On ``dm+dmAsync`` each statement is a blocking driver call on a worker thread.
A read-only API request on DM (``GET /items/{id}``, a page of ``GET /items``)
is one such call: the statement, its fetch and the rollback that ends DM's
implicit transaction (two round trips).  With one connection per request, a
connection whose thread has finished then waits for the event loop twice
before it works again: once to wake the request that read on it, which gives
it back, and once to wake the next request in line, which takes it and submits
its read.  Under load the loop is busy, each of those waits is a queue, and
the pool's connections sit idle for a tenth of their time
(``benchmarks/dm_executor.py``).

The relay keeps them working.  A read waits here for a connection, not for a
request to give one back; the thread that finishes a read takes the next
waiting read itself, on the same connection, and the loop only hears of each
result.  The rules:

* Connections come from the Database's pool through its slots, first come,
  first served, as every other request's do; the relay holds a connection for
  as long as its thread keeps finding reads, then gives it back.  While reads
  wait it takes every slot that comes free (``Slots.on_free``).
* A thread goes on to the next read only while nobody outside the relay is
  waiting for a slot (a write, a read inside a transaction): otherwise it gives
  its connection back, one thread per waiter, so reads never starve the other
  routes.  Only when the relay holds no connection at all do reads left
  waiting queue one turn in the slots' line.
* A read waits at most the pool timeout, then fails as a checkout would.  A
  connection that cannot be opened fails the read that asked for it.
* A read is bound to a connection only when a thread takes it, so until then
  it can be withdrawn: cancelled, or timed out.  One cancelled while its thread
  runs it finishes there and its result is dropped: the connection belongs to
  the relay, not to the request, and goes back to the pool only when its
  thread is done with it.
* A read that fails ends its connection's run: the connection goes back to the
  pool, which rolls it back, or is invalidated when the dialect reads the error
  as a disconnect.  The error reaches the request as SQLAlchemy's
  ``DBAPIError``, as it would through SQLAlchemy.

What a thread runs per read is :func:`dmitems.db.dm_compat.read_then_rollback`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from dmitems.db import closing

log = logging.getLogger(__name__)

_WAITING, _RUNNING, _DONE, _CANCELLED = range(4)


class _Read:
    """One read: a future, in asyncio's protocol, that a worker thread completes.

    The thread schedules the waiting task's wake-up itself
    (``call_soon_threadsafe``), with no executor future in between.
    """

    __slots__ = (
        "_relay", "_loop", "sql", "arguments", "_state", "_result", "_error", "_callbacks",
        "from_driver", "disconnect", "_asyncio_future_blocking",
    )

    def __init__(
        self, relay: ReadRelay, loop: asyncio.AbstractEventLoop, sql: str, arguments: list[Any]
    ) -> None:
        self._relay = relay
        self._loop = loop
        self.sql = sql
        self.arguments = arguments
        self._state = _WAITING
        self._result: Any = None
        self._error: BaseException | None = None
        self._callbacks: list[tuple[Callable[..., Any], Any]] = []
        self.from_driver = False  # the error came from the driver, on the thread
        self.disconnect = False  # ... and the dialect reads it as a disconnect
        self._asyncio_future_blocking = False

    def __await__(self) -> Iterator[Any]:
        if self._state < _DONE:
            self._asyncio_future_blocking = True
            yield self  # to the task, which calls add_done_callback
        return self.result()

    def _settle(
        self, result: Any, error: BaseException | None, state: int = _DONE
    ) -> list[tuple[Callable[..., Any], Any]]:
        """Under the relay's lock: done; returns the callbacks to schedule."""
        self._result, self._error, self._state = result, error, state
        callbacks, self._callbacks = self._callbacks, []
        return callbacks

    # -- asyncio's future protocol ---------------------------------------------

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def add_done_callback(self, callback: Callable[..., Any], *, context: Any = None) -> None:
        with self._relay._lock:
            if self._state < _DONE:
                self._callbacks.append((callback, context))
                return
        self._loop.call_soon(callback, self, context=context)

    def remove_done_callback(self, callback: Callable[..., Any]) -> int:
        with self._relay._lock:
            kept = [(cb, ctx) for cb, ctx in self._callbacks if cb != callback]
            removed = len(self._callbacks) - len(kept)
            self._callbacks = kept
        return removed

    def cancel(self, msg: Any = None) -> bool:
        """Withdraw the read if it still waits; a running read cannot be cancelled."""
        return self._relay._withdraw(self, None)

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def done(self) -> bool:
        return self._state >= _DONE

    def result(self) -> Any:
        if self._state == _CANCELLED:
            raise asyncio.CancelledError()
        if self._state < _DONE:
            raise asyncio.InvalidStateError("the read is not done")
        if self._error is not None:
            raise self._error
        return self._result

    def exception(self) -> BaseException | None:
        if self._state == _CANCELLED:
            raise asyncio.CancelledError()
        if self._state < _DONE:
            raise asyncio.InvalidStateError("the read is not done")
        return self._error


class ReadRelay:
    """Runs reads on pooled connections, each thread handing its connection to the next read.

    ``engine``: the async engine; ``slots``: the Database's
    :class:`~dmitems.db.slots.Slots` for that engine's pool; ``timeout``: the
    pool timeout; ``exhausted()``: the error for a read that waited that long;
    ``translate()``: the Database's error translation, around a checkout;
    ``run(dbapi_connection, sql, arguments)``: one read, on a worker thread.
    Everything but the threads' part runs on the engine's event loop.
    """

    def __init__(
        self,
        engine: Any,
        slots: Any,
        *,
        timeout: float,
        exhausted: Callable[[], Exception],
        translate: Callable[[], AbstractContextManager[Any]],
        run: Callable[[Any, str, list[Any]], list[Any]],
    ) -> None:
        self.engine = engine
        self._slots = slots
        slots.on_free = self._want  # a slot nobody waits for: reads waiting here may use it
        self._timeout = timeout
        self._exhausted = exhausted
        self._translate = translate
        self._run_one = run
        self._lock = threading.Lock()  # between the loop and the threads
        self._waiting: deque[_Read] = deque()  # under the lock
        self._yielding = 0  # runs ending for a waiter outside (under the lock)
        self._held = 0  # slots the relay holds: connections opening or running (loop only)
        self._turn_queued = False  # a turn waits in the slots' line (loop only)
        self._opening = 0  # connections being checked out (loop only)
        self._pending = 0  # runs submitted whose thread has not taken a read yet (under the lock)
        self._tasks: set[asyncio.Future[Any]] = set()
        self._idle: asyncio.Future[None] | None = None  # drain() waits on it
        self._closing = False  # drain() was called: no new connections
        self._driver_error: type[BaseException] = getattr(
            engine.dialect.loaded_dbapi, "Error", Exception
        )

    async def read(self, sql: str, arguments: list[Any]) -> list[Any]:
        """The rows of one read, run on a pooled connection by a worker thread.

        Raises SQLAlchemy's ``DBAPIError`` for a driver error, the Database's
        errors for a connection that cannot be had.
        """
        loop = asyncio.get_running_loop()
        read = _Read(self, loop, sql, arguments)
        with self._lock:
            self._waiting.append(read)
        if not self._closing and self._slots.try_take():
            self._held += 1
            await self._open(read)
        else:
            self._want()
        timer = loop.call_later(self._timeout, self._expire, read)
        try:
            return await read  # type: ignore[no-any-return]
        except Exception as error:
            if not read.from_driver:
                raise
            from sqlalchemy.exc import DBAPIError

            raise DBAPIError.instance(
                sql, arguments, error, self._driver_error,
                connection_invalidated=read.disconnect, dialect=self.engine.dialect,
            ) from error
        finally:
            timer.cancel()

    async def drain(self, timeout: float) -> None:
        """Open no more connections; wait (at most ``timeout`` s) until the relay holds none.

        Reads still waiting are served by the connections the relay holds, or
        time out.
        """
        self._closing = True
        await self.idle(timeout)

    async def idle(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until the relay holds no connection."""
        if not self._held:
            return
        if self._idle is None or self._idle.done():
            self._idle = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._idle), timeout)
        except asyncio.TimeoutError:
            log.warning("DM read relay: %d connections still busy at shutdown", self._held)

    # -- on the loop --------------------------------------------------------------

    async def _open(self, mine: _Read | None) -> None:
        """Holding a slot (counted in ``_held``): check a connection out and start a run on it.

        ``mine``: the read whose request opens it, which gets the error if the
        connection cannot be had (a turn's opening fails the oldest read).
        """
        self._opening += 1
        try:
            with self._translate():
                connection = await self.engine.connect()
        except BaseException as error:
            self._opening -= 1
            if isinstance(error, Exception):
                target = mine
                if target is None:
                    with self._lock:
                        target = self._waiting[0] if self._waiting else None
                if target is None or not self._withdraw(target, error):
                    log.debug("DM read relay: a connection could not be opened: %s", error)
            elif mine is not None:  # cancelled while checking out
                self._withdraw(mine, None)
            self._give_back()  # (after the read that failed has left the line)
            self._want()
            if not isinstance(error, Exception):
                raise
            return
        self._opening -= 1
        self._start(connection)
        self._want()  # reads still waiting: a free slot, or one turn in the line

    def _start(self, connection: Any) -> None:
        with self._lock:
            waiting = bool(self._waiting)
        if not waiting:  # others served them all meanwhile
            self._release(connection, None, False)
            return
        adapted = connection.sync_connection.connection.dbapi_connection
        loop = asyncio.get_running_loop()
        with self._lock:
            self._pending += 1
        try:
            executor = getattr(loop, "_default_executor", None)  # sized by dmitems
            if executor is None:
                loop.run_in_executor(None, self._run, connection, adapted, loop)
            else:
                executor.submit(self._run, connection, adapted, loop)
        except BaseException as error:  # noqa: BLE001 - e.g. the executor is shut down
            with self._lock:
                self._pending -= 1
                read = self._waiting[0] if self._waiting else None
            if read is not None:
                self._withdraw(read, error)
            self._release(connection, None, False)

    def _release(self, connection: Any, broken: BaseException | None, yielded: bool) -> None:
        """A run is over: its connection goes back (invalidated if ``broken``)."""
        self._keep(closing.start(self._close(connection, broken, yielded)))

    async def _close(self, connection: Any, broken: BaseException | None, yielded: bool) -> None:
        try:
            if broken is not None:
                await connection.invalidate(broken)
            await connection.close()  # inline: no task when closing sends nothing
        except Exception as error:  # noqa: BLE001 - the pool logs its own; nobody to raise to
            log.warning("DM read relay: returning a connection failed: %s", error)
        finally:
            self._give_back()  # to the waiter it yielded for, who is then no longer outside
            if yielded:
                with self._lock:
                    self._yielding -= 1
            self._want()

    def _give_back(self) -> None:
        self._held -= 1
        self._slots.give()
        if not self._held and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    def _want(self) -> None:
        """Reads wait: open connections while slots are free; when none is, and the relay
        holds none either, queue one turn in the line.

        While the relay holds connections their threads serve the waiting reads, so
        it queues no turn ahead of others who wait: a slot a thread gives up goes
        to them, not back to the relay.
        """
        while not self._closing:
            with self._lock:
                short = len(self._waiting) > self._opening + self._pending
            if not short or self._turn_queued:
                return
            if not self._slots.try_take():
                if not self._held:
                    self._queue_turn()
                return
            self._spawn()

    def _queue_turn(self) -> None:
        self._turn_queued = True
        self._slots.when_free(self._granted)

    def _granted(self) -> None:
        """A turn came up: this holds a slot."""
        self._turn_queued = False
        with self._lock:
            waiting = bool(self._waiting)
        if not waiting or self._closing or (self._held and self._slots.outside):
            # Nothing to do, or others wait while the relay's own threads serve the reads:
            # the slot goes on down the line (the relay queues again when a thread yields).
            self._slots.give()
        else:
            self._spawn()

    def _spawn(self) -> None:
        """Holding a slot: open a connection in a task of its own."""
        self._held += 1
        self._opening += 1  # counted from now: _want() may loop before the task starts
        self._keep(asyncio.ensure_future(self._spawned()))

    async def _spawned(self) -> None:
        self._opening -= 1
        await self._open(None)

    def _keep(self, task: asyncio.Future[Any] | None) -> None:
        if task is not None:  # a reference until it is done
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _expire(self, read: _Read) -> None:
        self._withdraw(read, self._exhausted())

    def _withdraw(self, read: _Read, error: BaseException | None) -> bool:
        """On the loop: end a read that still waits, with ``error`` (None: cancelled)."""
        with self._lock:
            if read._state != _WAITING:
                return False
            self._waiting.remove(read)
            callbacks = read._settle(None, error, _CANCELLED if error is None else _DONE)
        _schedule(read, callbacks, read._loop.call_soon)
        return True

    def _next(self) -> _Read | None:
        """Under the lock: the oldest waiting read, now running; None if none."""
        if not self._waiting:
            return None
        read = self._waiting.popleft()
        read._state = _RUNNING
        return read

    # -- on a worker thread ---------------------------------------------------------

    def _run(self, connection: Any, adapted: Any, loop: asyncio.AbstractEventLoop) -> None:
        """The waiting reads, oldest first, on one connection, from when this thread starts.

        A read stays withdrawable (cancel, timeout) until a thread takes it here.
        """
        broken: BaseException | None = None
        yielded = False
        try:
            with self._lock:
                self._pending -= 1
                read = self._next()
            while read is not None:
                try:
                    rows, error = self._run_one(adapted, read.sql, read.arguments), None
                except BaseException as failure:  # noqa: BLE001 - raised in the awaiting task
                    rows, error = None, failure
                    if isinstance(failure, self._driver_error):
                        read.from_driver = True
                        read.disconnect = self._is_disconnect(failure)
                with self._lock:
                    callbacks = read._settle(rows, error)
                    finished, read = read, None
                    if error is None and self._waiting:
                        if self._slots.outside > self._yielding:
                            self._yielding += 1
                            yielded = True
                        else:
                            read = self._next()
                _schedule(finished, callbacks, loop.call_soon_threadsafe)
                if error is not None and finished.disconnect:
                    broken = error
        finally:
            try:
                loop.call_soon_threadsafe(self._release, connection, broken, yielded)
            except RuntimeError:  # the loop is closed: nothing is left to give it back to
                log.debug("DM read relay: the loop closed before a connection went back")

    def _is_disconnect(self, error: BaseException) -> bool:
        try:
            return bool(self.engine.dialect.is_disconnect(error, None, None))
        except Exception:  # noqa: BLE001 - an error the dialect cannot read is no disconnect
            return False


def _schedule(read: _Read, callbacks: list[tuple[Callable[..., Any], Any]], call: Any) -> None:
    for callback, context in callbacks:
        call(callback, read, context=context)
