"""PostgreSQL for the direct path: connections on the event loop, transactions as plain functions.

Handing a transaction to a thread and back cost about 115 µs of CPU per hop on top of the statements
(the thread wake-ups and the GIL passing between the threads; bench/RESULTS.md): more than the
statements themselves. Here psycopg's async connections run on the server's event loop. The direct
path's transactions stay ordinary functions, the same ones SQLite runs inline: each runs in a greenlet
(SQLAlchemy's ``greenlet_spawn``), and each statement in it hands its wait for the server to the loop
(``await_``), so a transaction costs one greenlet, not a thread hop.

A read that is one statement needs no greenlet at all: ``fetch`` awaits psycopg directly, which cost
about a third of the CPU of the same read through ``greenlet_spawn`` (bench/RESULTS.md, round 5).

The pool is a small one of our own, bound to the loop that made it: psycopg_pool's bookkeeping cost
another 30 µs per transaction, and its background tasks outlive a loop that stops (tests run one loop
per call). Connections run in autocommit; a write sends its own BEGIN and COMMIT.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import select
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.util import await_, greenlet_spawn

from .direct import Driver
from .pg_wait import WatchedConnection

T = TypeVar("T")
_RECYCLE_SECONDS = 1800.0  # as the SQLAlchemy pool: a connection is replaced after half an hour


class _AwaitingCursor:
    """A psycopg async cursor with the DBAPI's blocking methods, for code inside ``greenlet_spawn``."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: psycopg.AsyncCursor[Any]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Any = None) -> _AwaitingCursor:
        await_(self._cursor.execute(sql, params))
        return self

    def executemany(self, sql: str, params: Any) -> None:
        await_(self._cursor.executemany(sql, params))

    def fetchone(self) -> Any:
        return await_(self._cursor.fetchone())

    def fetchall(self) -> list[Any]:
        return await_(self._cursor.fetchall())

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def close(self) -> None:
        """Nothing to release: the rows were read into memory with the answer."""


class AwaitingConnection:
    """The DBAPI face of a psycopg async connection that ``Statement`` uses (``Driver.dbapi``)."""

    __slots__ = ("connection", "statements_left")

    def __init__(self, connection: WatchedConnection, statements_left: int | None = None) -> None:
        self.connection = connection
        self.statements_left = statements_left  # None: no limit

    def cursor(self) -> _AwaitingCursor:
        if self.statements_left is not None:
            if self.statements_left == 0:
                raise RuntimeError("a one-statement write ran a second statement, outside any transaction")
            self.statements_left -= 1
        return _AwaitingCursor(self.connection.cursor())

    def execute(self, sql: str, params: Any = None) -> _AwaitingCursor:
        return self.cursor().execute(sql, params)


@dataclass(slots=True)
class _Pooled:
    connection: WatchedConnection
    opened_at: float
    # ``fetch``'s cursor, kept with its connection: a new cursor per read cost about 10 µs.
    reader: psycopg.AsyncCursor[Any] | None = None


def _has_news(connection: WatchedConnection, *, probe: bool) -> bool:
    """Whether an idle connection heard from the server unasked: in practice, that it closed the connection
    (a restart, pg_terminate_backend, an idle timeout). The socket's reader notices that when the loop
    next polls; ``probe`` asks the socket itself, a system call, for the work that cannot be run again
    once sent (a one-statement write). Other work that finds the connection dead runs again on a new one."""
    if connection.has_news():
        return True
    if not probe:
        return False
    try:
        readable, _, _ = select.select([connection.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return True
    return bool(readable)


class _LoopPool:
    """Up to ``size`` connections for one event loop; one that is broken or too old is dropped."""

    def __init__(self, connect: Callable[[], Any], size: int) -> None:
        self._connect = connect
        self._size = size
        self._open = 0
        self._idle: collections.deque[_Pooled] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[_Pooled | None]] = collections.deque()

    async def get(self, *, probe: bool) -> _Pooled:
        """An open connection; ``probe``: ask the socket whether the server closed it (``_has_news``)."""
        while self._idle:
            pooled = self._idle.pop()
            if time.monotonic() - pooled.opened_at < _RECYCLE_SECONDS and not _has_news(pooled.connection,
                                                                                         probe=probe):
                return pooled
            self._drop(pooled, wake=False)
        if self._open >= self._size:
            waiter: asyncio.Future[_Pooled | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed over just as we were cancelled
                    self._pass_on(waiter.result())
                raise
            if handed is not None:
                return handed
            # None: a connection was dropped and its slot handed to us; open a new one in it.
        else:
            self._open += 1
        try:
            return _Pooled(await self._connect(), time.monotonic())
        except BaseException:
            self._pass_on(None)
            raise

    def put(self, pooled: _Pooled) -> None:
        connection = pooled.connection
        if connection.broken or connection.closed or connection.info.transaction_status != TransactionStatus.IDLE:
            self._drop(pooled, wake=True)
        else:
            self._pass_on(pooled)

    def drop_idle(self) -> None:
        """Close every idle connection: after one was found dead the others usually are too, and at close."""
        while self._idle:
            self._drop(self._idle.pop(), wake=False)

    def _drop(self, pooled: _Pooled, *, wake: bool) -> None:
        pooled.connection.finish()
        if wake:
            self._pass_on(None)
        else:
            self._open -= 1

    def _pass_on(self, pooled: _Pooled | None) -> None:
        """Hand a connection, or with None a free slot, to the first waiter; else keep it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(pooled)
                return
        if pooled is None:
            self._open -= 1
        else:
            self._idle.append(pooled)


class _DeadConnection(Exception):
    """A pooled connection turned out dead before its transaction could commit anything."""


class PgDirect:
    """Runs direct-path transactions on PostgreSQL connections owned by the running event loop."""

    def __init__(self, dialect: Dialect, connect_args: tuple[Any, ...], connect_kwargs: dict[str, Any],
                 size: int) -> None:
        self._dialect = dialect
        self._connect_args = connect_args
        self._connect_kwargs = {**connect_kwargs, "autocommit": True}
        self._size = size
        self._pool: _LoopPool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None

    async def run(self, fn: Callable[[Driver], T], *, write: bool, one_statement: bool = False) -> T:
        """``fn`` in a transaction when it writes; a write of ``one_statement`` runs without one (a
        statement is atomic by itself), and is never run twice: that statement is its commit."""
        if one_statement:
            return await self._run_once(fn, write, may_retry=False, one_statement=True)
        return await self._again_if_dead(lambda may_retry: self._run_once(fn, write, may_retry=may_retry))

    async def fetch(self, sql: str, args: Any) -> list[Any]:
        """The rows of one read statement, run outside any transaction (it sees one snapshot by itself)."""
        return await self._again_if_dead(lambda may_retry: self._fetch_once(sql, args, may_retry=may_retry))

    async def _again_if_dead(self, attempt: Callable[[bool], Awaitable[T]]) -> T:
        try:
            return await attempt(True)
        except _DeadConnection:
            # It died while idle in the pool (a restart, a network cut, an idle timeout). Nothing was
            # committed, so running the work again on a new connection is safe.
            self._loop_pool().drop_idle()
            return await attempt(False)

    async def _fetch_once(self, sql: str, args: Any, *, may_retry: bool) -> list[Any]:
        pool = self._loop_pool()
        pooled = await pool.get(probe=False)  # a read on a dead connection runs again (_again_if_dead)
        connection = pooled.connection
        try:
            cursor = pooled.reader
            if cursor is None:
                cursor = pooled.reader = connection.cursor()
            await cursor.execute(sql, args)
            return await cursor.fetchall()
        except psycopg.Error as exc:
            raise self._failure(connection, exc, may_retry=may_retry) from exc
        finally:
            pool.put(pooled)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.drop_idle()
            self._pool = None

    def _loop_pool(self) -> _LoopPool:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool_loop is not loop:
            self.close()  # a pool of a loop that has stopped: its connections cannot be used here
            self._pool = _LoopPool(self._open_connection, self._size)
            self._pool_loop = loop
        return self._pool

    async def _open_connection(self) -> WatchedConnection:
        try:
            return await WatchedConnection.connect(*self._connect_args, **self._connect_kwargs)
        except psycopg.Error as exc:  # could not connect: as SQLAlchemy would raise it
            raise self._wrapped(exc) from exc

    async def _run_once(self, fn: Callable[[Driver], T], write: bool, *, may_retry: bool,
                        one_statement: bool = False) -> T:
        pool = self._loop_pool()
        pooled = await pool.get(probe=one_statement)
        try:
            result: T = await greenlet_spawn(self._transaction, pooled.connection, fn, write, may_retry,
                                             one_statement)
            return result
        finally:
            pool.put(pooled)

    def _transaction(self, connection: WatchedConnection, fn: Callable[[Driver], T], write: bool,
                     may_retry: bool, one_statement: bool) -> T:
        """Inside the greenlet: ``fn`` on the connection, in BEGIN … COMMIT when it writes."""
        dbapi = AwaitingConnection(connection, 1 if one_statement else None)
        committing = False
        try:
            if not write or one_statement:
                return fn(Driver(dbapi, self._dialect))
            dbapi.execute("BEGIN")
            try:
                result = fn(Driver(dbapi, self._dialect))
                committing = True
                dbapi.execute("COMMIT")
            except BaseException:
                if not connection.broken and not connection.closed:
                    # If even this fails, the connection is not idle and the pool drops it.
                    with contextlib.suppress(psycopg.Error):
                        dbapi.execute("ROLLBACK")
                raise
            return result
        except (DBAPIError, psycopg.Error) as exc:
            # A failed COMMIT may or may not have committed: never run again.
            failure = self._failure(connection, exc, may_retry=may_retry and not committing)
            if failure is exc:
                raise
            raise failure from exc

    def _failure(self, connection: WatchedConnection, exc: Exception, *, may_retry: bool) -> Exception:
        """What to raise for a statement that failed: the error as SQLAlchemy would raise it while the
        connection lives; once it is dead, ``_DeadConnection`` if the work may run again, else the error
        marked as a lost connection."""
        if not (connection.broken or connection.closed):
            return exc if isinstance(exc, DBAPIError) else self._wrapped(exc)
        if may_retry:
            return _DeadConnection()
        driver_error = exc.orig if isinstance(exc, DBAPIError) and isinstance(exc.orig, Exception) else exc
        return DBAPIError.instance(None, None, driver_error, psycopg.Error, hide_parameters=True,
                                   dialect=self._dialect, connection_invalidated=True)

    def _wrapped(self, exc: Exception) -> Exception:
        return DBAPIError.instance(None, None, exc, psycopg.Error, hide_parameters=True, dialect=self._dialect)
