"""Database access: one transaction per call, SQLite inline or PostgreSQL on a thread pool.

A thread hop per statement is what makes naive async SQLite slow; here a whole transaction runs
in one call. SQLite transactions are short and run inline on the event loop (one writer, no hop).
PostgreSQL transactions run on a small thread pool whose size matches the connection pool.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError

from ..errors import unavailable

T = TypeVar("T")
_WRITE = "tessera_write"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'tessera.db'}"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front so that a read-then-write transaction
        # cannot fail half-way with SQLITE_BUSY when another process writes.
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Runs callables inside transactions; ``fn(conn)`` must do only database work."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = create_engine(url, pool_size=1, max_overflow=4)
            _configure_sqlite(self.engine)
            self._pool: ThreadPoolExecutor | None = None
        else:
            self.engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=0,
                pool_pre_ping=True,
                pool_recycle=1800,
            )
            self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="db")

    def run_sync(self, fn: Callable[[Connection], T], *, write: bool = False) -> T:
        try:
            with self.engine.connect() as conn:
                if write:
                    conn = conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    return fn(conn)
        except OperationalError as exc:
            if _is_connection_problem(exc):
                raise unavailable("STORE-UNAV1", "Database is unavailable") from exc
            raise
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise unavailable("STORE-UNAV2", "Database connection was lost") from exc
            raise

    async def run(self, fn: Callable[[Connection], T], *, write: bool = False) -> T:
        if self._pool is None:
            return self.run_sync(fn, write=write)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: self.run_sync(fn, write=write))

    async def write(self, fn: Callable[[Connection], T]) -> T:
        return await self.run(fn, write=True)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        return await self.run(fn)

    async def ping(self) -> bool:
        try:
            await self.read(lambda conn: conn.execute(text("SELECT 1")).scalar())
        except Exception:
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()
        if self._pool is not None:
            self._pool.shutdown(wait=False)


def _is_connection_problem(exc: OperationalError) -> bool:
    message = str(exc.orig).lower() if exc.orig is not None else ""
    markers = ("connection", "could not connect", "server closed", "terminating", "locked", "readonly")
    return exc.connection_invalidated or any(m in message for m in markers)


def row_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)
