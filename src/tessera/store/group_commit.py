"""Group commit for SQLite: the writes that are ready together share one transaction.

On SQLite a commit costs more than the statements before it (WAL frames for every page touched, the
write lock, and now and then a checkpoint), and everything runs on the event loop. So a write does not
commit on its own: it joins a batch, and once the loop has run the other requests that were ready, the
batch runs in one ``BEGIN IMMEDIATE … COMMIT``. Each write runs inside its own savepoint, so a write
that fails (a conflict, a failed check) is rolled back alone and its caller gets its own error; the
others commit. Every caller is answered only after the commit, so a reply never reports a write that
was not made durable.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError

from .direct import Driver

T = TypeVar("T")
Translate = Callable[[BaseException], BaseException]

_MAX_BATCH = 256  # bounds how long one batch holds the loop and the write lock
_FIRST_RETRY_S, _LAST_RETRY_S = 0.0005, 0.01


class GroupCommit:
    """Batches of writes on ``driver()``'s connection, which must not wait for locks itself (busy_timeout=0).

    Another process may hold SQLite's write lock (``tessera serve --workers``). Waiting for it in
    SQLite's busy handler would stop the event loop; instead the batch is tried again a little later,
    while the loop goes on serving reads, for up to ``lock_wait_seconds``.
    """

    lock_wait_seconds = 5.0

    def __init__(self, driver: Callable[[], Driver], dialect: Dialect, translate: Translate) -> None:
        self._driver = driver
        self._dialect = dialect
        self._translate = translate
        self._pending: list[tuple[Callable[[Driver], Any], asyncio.Future[Any]]] = []
        self._scheduled = False
        self._waiting_since: float | None = None  # when the first try to take the write lock failed
        self._retry_in = _FIRST_RETRY_S

    async def write(self, fn: Callable[[Driver], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        while self._pending:
            batch = self._pending[:_MAX_BATCH]
            if not self._run(batch):
                self._retry_later()
                return
            del self._pending[:len(batch)]

    def _retry_later(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._waiting_since is None:
            self._waiting_since = now
        elif now - self._waiting_since > self.lock_wait_seconds:
            self._waiting_since, self._retry_in = None, _FIRST_RETRY_S
            pending, self._pending = self._pending, []
            error = self._translate(self._locked_error())
            for _, future in pending:
                if not future.done():
                    future.set_exception(error)
            return
        self._scheduled = True
        loop.call_later(self._retry_in, self._flush)
        self._retry_in = min(self._retry_in * 2, _LAST_RETRY_S)

    def _run(self, batch: list[tuple[Callable[[Driver], Any], asyncio.Future[Any]]]) -> bool:
        """Run and commit ``batch``; False, with nothing done, when another process holds the write lock."""
        driver = self._driver()
        dbapi: sqlite3.Connection = driver.dbapi
        try:
            dbapi.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                return False
            self._fail(batch, exc)
            return True
        self._waiting_since, self._retry_in = None, _FIRST_RETRY_S
        results: list[tuple[asyncio.Future[Any], Any]] = []
        try:
            for fn, future in batch:
                if future.cancelled():
                    continue
                self._call(dbapi, "SAVEPOINT tessera_write")
                try:
                    result = fn(driver)
                except Exception as exc:
                    self._call(dbapi, "ROLLBACK TO tessera_write")
                    self._call(dbapi, "RELEASE tessera_write")
                    future.set_exception(self._translate(exc))
                    continue
                self._call(dbapi, "RELEASE tessera_write")
                results.append((future, result))
            self._call(dbapi, "COMMIT")
        except Exception as exc:  # a savepoint or COMMIT failed: nothing of this batch was written
            if dbapi.in_transaction:
                dbapi.rollback()
            self._fail(batch, exc)
            return True
        for future, result in results:
            if not future.done():
                future.set_result(result)
        return True

    def _fail(self, batch: list[tuple[Callable[[Driver], Any], asyncio.Future[Any]]], exc: Exception) -> None:
        error = self._translate(self._wrapped(exc))
        for _, future in batch:
            if not future.done():
                future.set_exception(error)

    def _locked_error(self) -> Exception:
        return self._wrapped(sqlite3.OperationalError("database is locked"))

    def _wrapped(self, exc: Exception) -> Exception:
        if isinstance(exc, sqlite3.Error):  # as SQLAlchemy would raise it, so that the database's errors map alike
            return DBAPIError.instance(None, None, exc, sqlite3.Error, hide_parameters=True, dialect=self._dialect)
        return exc

    def _call(self, dbapi: sqlite3.Connection, statement: str) -> None:
        try:
            dbapi.execute(statement)
        except sqlite3.Error as exc:
            raise self._wrapped(exc) from exc
