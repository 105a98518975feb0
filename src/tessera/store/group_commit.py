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


class GroupCommit:
    def __init__(self, driver: Callable[[], Driver], dialect: Dialect, translate: Translate) -> None:
        self._driver = driver
        self._dialect = dialect
        self._translate = translate
        self._pending: list[tuple[Callable[[Driver], Any], asyncio.Future[Any]]] = []
        self._scheduled = False

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
            batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
            self._run(batch)

    def _run(self, batch: list[tuple[Callable[[Driver], Any], asyncio.Future[Any]]]) -> None:
        driver = self._driver()
        dbapi: sqlite3.Connection = driver.dbapi
        results: list[tuple[asyncio.Future[Any], Any]] = []
        try:
            self._call(dbapi, "BEGIN IMMEDIATE")
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
        except Exception as exc:  # BEGIN, a savepoint or COMMIT failed: nothing of this batch was written
            if dbapi.in_transaction:
                dbapi.rollback()
            error = self._translate(exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for future, result in results:
            if not future.done():
                future.set_result(result)

    def _call(self, dbapi: sqlite3.Connection, statement: str) -> None:
        try:
            dbapi.execute(statement)
        except sqlite3.Error as exc:  # as SQLAlchemy would raise it, so that the database's errors map alike
            raise DBAPIError.instance(statement, None, exc, sqlite3.Error, hide_parameters=True,
                                      dialect=self._dialect) from exc
