"""The hot path to the database: fixed statements compiled once, then run straight on the driver.

SQLAlchemy's execution machinery (connection check-out, events, result set-up) cost five to ten times
what SQLite itself spends on a primary-key read (bench/RESULTS.md). The statements that every request
runs (authentication, reading, creating and updating sessions, their events) are therefore ``Statement``
objects: SQLAlchemy renders each one once per dialect, and every call then goes to the DBAPI cursor.

A ``Statement`` runs on either kind of connection: a SQLAlchemy ``Connection`` (inside
``Database.run_sync``'s transaction, beside Core queries) or a ``Driver`` (inside
``Database.run_direct``, which skips SQLAlchemy for the whole transaction).

Values pass through unconverted, so these statements carry only ``str``, ``int``, ``bool``, ``bytes``
and ``None``, which both drivers take and return as they are (SQLite returns booleans as 0 or 1).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Dialect, Select, select, true
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(slots=True)
class Driver:
    """A DBAPI connection inside a transaction that ``Database.run_direct`` opened."""

    dbapi: Any
    dialect: Dialect


Conn = Connection | Driver
Params = Mapping[str, Any]


class Reader(Protocol):
    """What runs one read statement outside a transaction (``Database.fetch``)."""

    async def fetch(self, statement: Statement, params: Params) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class _Rendered:
    sql: str
    positional: tuple[str, ...] | None  # bind names in order, for drivers with ``?`` placeholders
    fixed: dict[str, Any]  # binds whose value is part of the statement (e.g. ``.values(metadata=None)``)


class Statement:
    """One fixed statement; ``first``/``all`` return rows with attribute access (named tuples)."""

    def __init__(self, statement: ClauseElement) -> None:
        self._statement = statement
        self._rendered: dict[str, _Rendered] = {}
        columns = getattr(statement, "selected_columns", None)
        self.columns: tuple[str, ...] = tuple(c.key for c in columns) if columns is not None else ()
        # Duplicate column names raise here, at import, rather than shadow each other in a row.
        self.row: Any = namedtuple("Row", self.columns) if self.columns else None

    def _render(self, dialect: Dialect) -> _Rendered:
        rendered = self._rendered.get(dialect.name)
        if rendered is None:
            compiled = self._statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)
            fixed = {compiled.bind_names[bind]: bind.value for bind in compiled.binds.values()
                     if not bind.required and bind.callable is None}
            positional = tuple(compiled.positiontup or ()) if dialect.positional else None
            rendered = self._rendered[dialect.name] = _Rendered(compiled.string, positional, fixed)
        return rendered

    def _args(self, rendered: _Rendered, params: Params) -> Any:
        merged = {**rendered.fixed, **params} if rendered.fixed else params
        if rendered.positional is not None:
            return tuple(merged[name] for name in rendered.positional)
        return merged

    def _cursor(self, conn: Conn, params: Params) -> Any:
        dbapi, dialect = _driver_of(conn)
        rendered = self._render(dialect)
        cursor = dbapi.cursor()
        try:
            cursor.execute(rendered.sql, self._args(rendered, params))
        except Exception as exc:
            cursor.close()
            raise _wrapped(exc, dialect, rendered.sql) from exc
        return cursor

    def prepared(self, dialect: Dialect, params: Params) -> tuple[str, Any]:
        """The SQL text and driver arguments for ``params``: for callers that run it on the driver themselves."""
        rendered = self._render(dialect)
        return rendered.sql, self._args(rendered, params)

    def rows(self, raw: list[Any]) -> list[Any]:
        """The driver's rows as ``all`` returns them."""
        make = self.row
        return [make._make(r) for r in raw] if make is not None else raw

    def all(self, conn: Conn, params: Params) -> list[Any]:
        cursor = self._cursor(conn, params)
        try:
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return self.rows(rows)

    def first(self, conn: Conn, params: Params) -> Any:
        cursor = self._cursor(conn, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        if row is None or self.row is None:
            return row
        return self.row._make(row)

    def tuples(self, conn: Conn, params: Params) -> list[tuple[Any, ...]]:
        """Plain tuples, in ``columns`` order: for callers that turn many rows into their own objects."""
        cursor = self._cursor(conn, params)
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def run(self, conn: Conn, params: Params) -> int:
        """Execute a write; returns the number of rows it touched."""
        cursor = self._cursor(conn, params)
        count: int = cursor.rowcount
        cursor.close()
        return count

    def run_many(self, conn: Conn, params: Sequence[Params]) -> None:
        if not params:
            return
        dbapi, dialect = _driver_of(conn)
        rendered = self._render(dialect)
        cursor = dbapi.cursor()
        try:
            cursor.executemany(rendered.sql, [self._args(rendered, p) for p in params])
        except Exception as exc:
            raise _wrapped(exc, dialect, rendered.sql) from exc
        finally:
            cursor.close()


def _driver_of(conn: Conn) -> tuple[Any, Dialect]:
    if isinstance(conn, Driver):
        return conn.dbapi, conn.dialect
    return conn.connection.driver_connection, conn.dialect


def _wrapped(exc: Exception, dialect: Dialect, sql: str) -> Exception:
    """A driver error as SQLAlchemy would raise it, so that ``Database`` classifies both alike."""
    dbapi_error = dialect.loaded_dbapi.Error
    if not isinstance(exc, dbapi_error):
        return exc
    return DBAPIError.instance(sql, None, exc, dbapi_error, hide_parameters=True, dialect=dialect)


class Beside:
    """Two reads as one statement: each row of ``first`` with the row of ``second`` beside it (NULLs
    when ``second`` finds nothing; no rows at all when ``first`` finds none). Two reads that do not
    depend on each other cost one round trip to the database instead of two, and see one snapshot.
    ``second`` must find at most one row whose first column is never NULL (its key), and the two must
    not share bind names."""

    def __init__(self, first: Statement, second: Statement) -> None:
        left = _select_of(first).subquery("first")
        right = _select_of(second).subquery("second")
        self.first, self.second = first, second
        self._width = len(left.c)
        self.statement = Statement(
            select(*(c.label(f"a_{c.key}") for c in left.c), *(c.label(f"b_{c.key}") for c in right.c))
            .select_from(left.outerjoin(right, true())))

    def split(self, rows: list[Any]) -> tuple[list[Any], Any]:
        """``first``'s rows and ``second``'s row (None if it found none), as each alone returns them."""
        width, make_first, make_second = self._width, self.first.row._make, self.second.row._make
        firsts = [make_first(row[:width]) for row in rows]
        found = rows[0][width:] if rows else None
        # A found row has its key; NULL there is the outer join finding nothing.
        second = make_second(found) if found is not None and found[0] is not None else None
        return firsts, second


def _select_of(statement: Statement) -> Select[Any]:
    select_ = statement._statement
    assert isinstance(select_, Select), "only a SELECT can stand beside another"
    return select_
