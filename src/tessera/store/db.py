"""Database access: one transaction per call, SQLite inline or PostgreSQL off the loop.

A thread hop per statement is what makes naive async SQLite slow; here a whole transaction runs
in one call. SQLite transactions are short and run inline on the event loop (one writer, no hop).
On PostgreSQL, the hot path's transactions (``direct_read``/``direct_write``) run on the event loop
with async connections (pg_direct.py); the others run on a small thread pool whose size matches
SQLAlchemy's connection pool.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, literal_column, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError

from ..errors import Code, TesseraError, already_exists, invalid_argument, unavailable
from .direct import Driver, Statement
from .group_commit import GroupCommit
from .pg_direct import PgDirect

T = TypeVar("T")
_PING = Statement(select(literal_column("1").label("one")))
_WRITE = "tessera_write"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'tessera.db'}"


def _apply_sqlite_pragmas(dbapi_conn: sqlite3.Connection) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    # LIKE must be case-sensitive, as on PostgreSQL; the *_IGNORE_CASE text queries use lower().
    cur.execute("PRAGMA case_sensitive_like=ON")
    cur.close()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        _apply_sqlite_pragmas(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front so that a read-then-write transaction
        # cannot fail half-way with SQLITE_BUSY when another process writes.
        statement = "BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE, False) else "BEGIN"
        # Straight to the driver: through exec_driver_sql, BEGIN cost as much as the query after it.
        try:
            conn.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
        except sqlite3.OperationalError as exc:  # e.g. locked by another process: as SQLAlchemy would raise it
            raise OperationalError(statement, None, exc) from exc


class Database:
    """Runs callables inside transactions; ``fn(conn)`` must do only database work."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        # SQLite's driver connections for run_direct: one per thread (in the server, the event loop's).
        self._direct = threading.local()
        self._direct_connections: list[sqlite3.Connection] = []
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            # hide_parameters: SQL errors and logs must never show hashes or other stored secrets
            self.engine = create_engine(url, pool_size=1, max_overflow=4, hide_parameters=True)
            _configure_sqlite(self.engine)
            self._pool: ThreadPoolExecutor | None = None
            self._group_commit = GroupCommit(self._sqlite_writer, self.engine.dialect, _translated)
        else:
            self.engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=0,
                pool_pre_ping=True,
                pool_recycle=1800,
                hide_parameters=True,
            )
            # The direct path's connections live on the event loop (pg_direct.py); SQLAlchemy's pool and
            # threads serve the rest.
            connect_args, connect_kwargs = self.engine.dialect.create_connect_args(self.engine.url)
            self._pg_direct = PgDirect(self.engine.dialect, tuple(connect_args), dict(connect_kwargs), pool_size)
            self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="db")

    @property
    def statements_are_round_trips(self) -> bool:
        """Whether each statement waits for a server (PostgreSQL), so that two reads are worth joining
        into one; SQLite's are calls into this process, cheaper apart (bench/RESULTS.md, round 8)."""
        return self._pool is not None

    def run_sync(self, fn: Callable[[Connection], T], *, write: bool = False) -> T:
        with _translated_errors(), self.engine.connect() as conn:
            if write:
                conn = conn.execution_options(**{_WRITE: True})
            elif self._pool is not None:
                # PostgreSQL reads skip BEGIN and COMMIT, two of their three round trips: under
                # READ COMMITTED every statement takes its own snapshot either way.
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            with conn.begin():
                return fn(conn)

    def run_direct_sync(self, fn: Callable[[Driver], T], *, write: bool = False) -> T:
        """Like ``run_sync`` for functions that use only ``direct.Statement``s, on SQLite: no SQLAlchemy in
        between (PostgreSQL's direct path runs on the event loop: ``direct_read``/``direct_write``).

        Reads run without a transaction (each statement sees its own snapshot, as under PostgreSQL's
        READ COMMITTED); writes run in one, taking SQLite's write lock up front.
        """
        if self._pool is not None:
            raise RuntimeError("run_direct_sync is for SQLite; PostgreSQL's direct path is direct_read/direct_write")
        try:  # not _translated_errors(): a context manager per call cost more than the read it wraps
            return self._sqlite_direct(fn, write)
        except (DBAPIError, OverflowError) as exc:
            raise _translated(exc)  # noqa: B904 (already raised from exc, or exc itself)

    def _sqlite_driver(self) -> Driver:
        driver: Driver | None = getattr(self._direct, "driver", None)
        if driver is None:
            driver = self._direct.driver = self._sqlite_connection()
        return driver

    def _sqlite_writer(self) -> Driver:
        """The group commit's connection: it never waits for the write lock itself (see GroupCommit)."""
        driver: Driver | None = getattr(self._direct, "writer", None)
        if driver is None:
            driver = self._direct.writer = self._sqlite_connection()
            driver.dbapi.execute("PRAGMA busy_timeout=0")
        return driver

    def _sqlite_connection(self) -> Driver:
        # Used by one thread only; another thread may close it at dispose().
        dbapi = sqlite3.connect(self.engine.url.database or "", isolation_level=None, check_same_thread=False)
        _apply_sqlite_pragmas(dbapi)
        self._direct_connections.append(dbapi)
        return Driver(dbapi, self.engine.dialect)

    def _sqlite_direct(self, fn: Callable[[Driver], T], write: bool) -> T:
        driver = self._sqlite_driver()
        if not write:
            return fn(driver)
        dbapi = driver.dbapi
        _driver_call(dbapi, self.engine.dialect, "BEGIN IMMEDIATE")
        try:
            result = fn(driver)
        except BaseException:
            dbapi.rollback()
            raise
        _driver_call(dbapi, self.engine.dialect, "COMMIT")
        return result

    async def run(self, fn: Callable[[Connection], T], *, write: bool = False) -> T:
        if self._pool is None:
            return self.run_sync(fn, write=write)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: self.run_sync(fn, write=write))

    async def direct_read(self, fn: Callable[[Driver], T]) -> T:
        """Run ``fn``, which must not write, on the driver (see ``run_direct_sync``)."""
        if self._pool is None:
            return self.run_direct_sync(fn)
        return await _translated_from(self._pg_direct.run(fn, write=False))

    async def fetch(self, statement: Statement, params: Mapping[str, Any]) -> list[Any]:
        """The rows of one read statement (``statement.all``); on PostgreSQL without a greenlet."""
        if self._pool is None:  # inline on this thread's own connection, as run_direct_sync runs a read
            try:
                return statement.all(self._sqlite_driver(), params)
            except (DBAPIError, OverflowError) as exc:
                raise _translated(exc)  # noqa: B904 (already raised from exc, or exc itself)
        return statement.rows(await _translated_from(self._pg_direct.fetch(
            *statement.prepared(self.engine.dialect, params))))

    async def direct_write(self, fn: Callable[[Driver], T], *, one_statement: bool = False) -> T:
        """Run ``fn`` in a write transaction; on SQLite it shares the transaction with other ready writes.

        ``one_statement``: on PostgreSQL ``fn`` runs exactly one statement, which is atomic without
        BEGIN and COMMIT around it (two round trips fewer).
        """
        if self._pool is None:
            return await self._group_commit.write(fn)
        return await _translated_from(self._pg_direct.run(fn, write=True, one_statement=one_statement))

    async def write(self, fn: Callable[[Connection], T]) -> T:
        return await self.run(fn, write=True)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn``, which must not write (on PostgreSQL it runs without a transaction)."""
        return await self.run(fn)

    async def ping(self) -> bool:
        try:
            await self.fetch(_PING, {})
        except Exception:
            return False
        return True

    def dispose(self) -> None:
        for dbapi in self._direct_connections:
            dbapi.close()
        self._direct_connections.clear()
        self._direct = threading.local()
        self.engine.dispose()
        if self._pool is not None:
            self._pg_direct.close()
            self._pool.shutdown(wait=False)


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Database errors as the API reports them; everything else passes through."""
    try:
        yield
    except IntegrityError as exc:
        if _is_unique_violation(exc):
            raise _conflict(exc) from exc
        raise
    except OperationalError as exc:
        if _has_too_many_values(exc):
            raise invalid_argument("STORE-DATA2", "The request has too many values for one query") from exc
        if _is_storage_full(exc):
            raise unavailable("STORE-FULL1", "Database storage is full") from exc
        if _is_connection_problem(exc):
            raise unavailable("STORE-UNAV1", "Database is unavailable") from exc
        raise
    except (DataError, OverflowError) as exc:
        # A value the database cannot hold (too long, NUL in text, integer out of range) that no
        # earlier check caught: the request is at fault, and its transaction was rolled back.
        raise invalid_argument("STORE-DATA1", "A value is too long, too large or not valid text") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise unavailable("STORE-UNAV2", "Database connection was lost") from exc
        raise


async def _translated_from(call: Awaitable[T]) -> T:
    """Await the direct path on PostgreSQL, its database errors as ``_translated_errors`` lets them out."""
    try:
        return await call
    except (DBAPIError, OverflowError) as exc:
        raise _translated(exc)  # noqa: B904 (already raised from exc, or exc itself)


def _translated(exc: BaseException) -> BaseException:
    """``exc`` as ``_translated_errors`` would let it out."""
    try:
        with _translated_errors():
            raise exc
    except BaseException as translated:
        return translated
    raise AssertionError("unreachable")


def _driver_call(dbapi: sqlite3.Connection, dialect: Any, statement: str) -> None:
    try:
        dbapi.execute(statement)
    except sqlite3.Error as exc:  # e.g. locked by another process: as SQLAlchemy would raise it
        raise DBAPIError.instance(statement, None, exc, sqlite3.Error, hide_parameters=True, dialect=dialect) from exc


def _is_unique_violation(exc: IntegrityError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)  # psycopg
    return sqlstate == "23505" or str(exc.orig).startswith("UNIQUE constraint failed")


def _conflict(exc: IntegrityError) -> TesseraError:
    """A unique index caught what the up-front checks could not: a concurrent writer won the race."""
    message = str(exc.orig).lower() if exc.orig is not None else ""
    if "uq_events" in message or "events.aggregate_type" in message:
        return TesseraError(Code.ABORTED, "STORE-SEQ01", "Concurrent modification; retry the request")
    return already_exists("STORE-DUP01", "Already exists")


def _has_too_many_values(exc: OperationalError) -> bool:
    """More bind parameters than the driver allows (65535 in PostgreSQL's protocol), e.g. huge ID lists."""
    message = str(exc.orig).lower() if exc.orig is not None else ""
    return "number of parameters must be between" in message or "too many sql variables" in message


def _is_storage_full(exc: OperationalError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)  # psycopg: 53100 disk_full, 53200 out_of_memory
    message = str(exc.orig).lower() if exc.orig is not None else ""
    return sqlstate in ("53100", "53200") or "disk is full" in message


def _is_connection_problem(exc: OperationalError) -> bool:
    message = str(exc.orig).lower() if exc.orig is not None else ""
    markers = ("connection", "could not connect", "server closed", "terminating", "locked", "readonly",
               "disk i/o error", "unable to open database file", "the database system is")
    return exc.connection_invalidated or any(m in message for m in markers)


def row_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)
