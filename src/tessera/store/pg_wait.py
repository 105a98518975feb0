"""A psycopg async connection that waits for its server with the socket's reader registered once.

psycopg's own wait adds a reader to the event loop and removes it again for every wait: two
``epoll_ctl`` system calls per round trip, which with the rest of that wait cost about 10 % of the
client CPU of a read on this path (bench/RESULTS.md, round 8). Here the reader is added at the first
wait and stays for the connection's life; a wait is one future and one timer, and no system call.

A reader that fires while nobody waits means the server spoke unasked, which in practice means it is
closing the connection; the reader is then removed (the socket would stay readable and call it on
every turn of the loop) and ``has_news`` says so, so that the pool drops the connection. The timer
covers the one case the reader misses (``_SocketWatcher._recheck``).
"""

from __future__ import annotations

import asyncio
import contextlib
import select
from typing import Any

import psycopg
from psycopg.abc import RV, PQGen
from psycopg.pq import ConnStatus
from psycopg.pq.abc import PGconn
from psycopg.waiting import READY_NONE, READY_R, READY_W, WAIT_W

_RECHECK_SECONDS = 0.1  # psycopg's own interval between looks at a socket it waits on


class _SocketWatcher:
    """The one reader of a connection's socket, and the future of the wait in progress, if any."""

    __slots__ = ("_fileno", "_loop", "_pgconn", "_registered", "_waiter", "news")

    def __init__(self, loop: asyncio.AbstractEventLoop, pgconn: PGconn) -> None:
        self._loop = loop
        self._pgconn = pgconn
        self._fileno = pgconn.socket
        self._waiter: asyncio.Future[int] | None = None
        self._registered = False
        self.news = False

    async def run(self, gen: PQGen[RV]) -> RV:
        """Drive psycopg's generator to its end, waiting on the loop whenever it would block."""
        try:
            state = next(gen)
            while True:
                if state & WAIT_W and _writable_now(self._fileno):
                    state = gen.send(READY_W)  # the usual case: a send that did not fill the socket
                else:
                    state = gen.send(await self._ready(state))
        except StopIteration as done:
            result: RV = done.value
            return result
        except OSError as exc:  # as psycopg reports a socket that went away under it
            self.stop()
            raise psycopg.OperationalError("connection socket closed") from exc
        except BaseException:
            self.stop()
            raise

    async def _ready(self, state: int) -> int:
        if self._pgconn.status == ConnStatus.BAD:
            # libpq closed the socket when the stream broke, and its number may already belong to
            # another socket: the reader must go, and there is nothing left to wait for.
            self.stop()
            raise psycopg.OperationalError("the connection is lost")
        loop = self._loop
        waiter: asyncio.Future[int] = loop.create_future()
        self._waiter = waiter
        if not self._registered:
            loop.add_reader(self._fileno, self._readable)
            self._registered = True
        writing = bool(state & WAIT_W)
        if writing:  # rare: only when a request is larger than the socket's buffer
            loop.add_writer(self._fileno, _resolve, waiter, READY_W)
        timer = loop.call_later(_RECHECK_SECONDS, self._recheck, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None
            if writing:
                loop.remove_writer(self._fileno)

    def _recheck(self, waiter: asyncio.Future[int]) -> None:
        """No answer for a while: register the reader anew and let psycopg look at the socket itself.
        When the socket reports an error (the server reset the connection), uvloop closes the watch on
        it without calling the reader; only a new registration sees the socket again."""
        self.stop()
        if not waiter.done():
            waiter.set_result(READY_NONE)

    def _readable(self) -> None:
        waiter = self._waiter
        if waiter is None:
            self.news = True
            self.stop()
        elif not waiter.done():
            waiter.set_result(READY_R)

    def stop(self) -> None:
        """Unregister the reader: before the socket is closed, or when nobody will read it."""
        if self._registered:
            self._registered = False
            if not self._loop.is_closed():
                with contextlib.suppress(ValueError, OSError, RuntimeError):
                    self._loop.remove_reader(self._fileno)


def _resolve(waiter: asyncio.Future[int], ready: int) -> None:
    if not waiter.done():
        waiter.set_result(ready)


def _writable_now(fileno: int) -> bool:
    _, writable, _ = select.select([], [fileno], [], 0)
    return bool(writable)


class WatchedConnection(psycopg.AsyncConnection[Any]):
    """``psycopg.AsyncConnection`` with the lasting reader above; used on one event loop only."""

    _watcher: _SocketWatcher | None = None

    async def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        if timeout is not None:  # psycopg's waits with a deadline (after cancelling a query): its own
            return await super().wait(gen, interval=interval, timeout=timeout)
        watcher = self._watcher
        if watcher is None:  # the socket is fixed once connected; ``reset`` would change it, never called
            watcher = self._watcher = _SocketWatcher(asyncio.get_running_loop(), self.pgconn)
        return await watcher.run(gen)

    def has_news(self) -> bool:
        """Whether the server spoke while the connection sat idle (it is closing it, as a rule)."""
        return self._watcher is not None and self._watcher.news

    def finish(self) -> None:
        """Close the socket at once, no round trip; safe on a dead or closed connection."""
        if self._watcher is not None:
            self._watcher.stop()
        self.pgconn.finish()
