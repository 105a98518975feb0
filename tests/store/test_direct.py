"""The hot path to the database (store/direct.py) and SQLite's group commit (store/group_commit.py).

Writes that run together must behave exactly as if each had its own transaction: a failing write is
rolled back alone with its own error, the others are committed, and nobody is answered before the
commit. Runs on both backends (PostgreSQL has no group commit, but the same contract).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, literal_column, select

from tessera.container import Container
from tessera.errors import Code, TesseraError, invalid_argument
from tessera.sessions.model import Factors, Session
from tessera.store import events, sessions
from tessera.store.direct import Driver, Statement
from tessera.store.schema import events as events_table

from ..conftest import PG_ADMIN_DSN, migrated_container, throwaway_pg_database


def append(aggregate_id: str, sequence: int = 1) -> Callable[[Any], str]:
    def write(conn: Any) -> str:
        events.append(conn, aggregate_type="test", aggregate_id=aggregate_id, sequence=sequence,
                      event_type="test.written", creator=None, at=1)
        return aggregate_id
    return write


def stored(c: Container) -> list[tuple[str, int]]:
    query = (select(events_table.c.aggregate_id, events_table.c.sequence)
             .where(events_table.c.aggregate_type == "test").order_by(events_table.c.aggregate_id))
    return [(r.aggregate_id, r.sequence) for r in c.db.run_sync(lambda conn: conn.execute(query).all())]


def test_writes_that_run_together_fail_alone(container: Container) -> None:
    def write_then_fail(conn: Driver) -> str:
        append("half-written")(conn)
        raise invalid_argument("TEST-fail1", "refused after writing")

    async def scenario() -> list[Any]:
        await container.db.direct_write(append("first"))
        return await asyncio.gather(
            *(container.db.direct_write(append(f"w{i:02d}")) for i in range(20)),
            container.db.direct_write(append("first")),  # same aggregate and sequence: a conflict
            container.db.direct_write(write_then_fail),
            return_exceptions=True)

    results = asyncio.run(scenario())
    assert results[:20] == [f"w{i:02d}" for i in range(20)]
    conflict, refused = results[20], results[21]
    assert isinstance(conflict, TesseraError) and conflict.code == Code.ABORTED, conflict
    assert conflict.error_id == "STORE-SEQ01"
    assert isinstance(refused, TesseraError) and refused.error_id == "TEST-fail1", refused
    # The conflicting write and the half-done one left nothing behind; all the others are there.
    assert stored(container) == [("first", 1)] + [(f"w{i:02d}", 1) for i in range(20)]


@pytest.fixture
def sqlite_container(tmp_path: Path) -> Iterator[Container]:
    """The write lock and group commit are SQLite's."""
    with migrated_container(f"sqlite:///{tmp_path / 'tessera.db'}", tmp_path) as c:
        yield c


def test_writes_wait_for_another_process_s_write_lock_without_stopping_reads(sqlite_container: Container) -> None:
    db = sqlite_container.db
    other = sqlite3.connect(str(sqlite_container.settings.data_dir / "tessera.db"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another worker process holds the write lock

    async def scenario() -> tuple[list[str], int]:
        writes = asyncio.gather(*(db.direct_write(append(f"waited{i}")) for i in range(5)))
        reads = 0
        for _ in range(20):  # the loop keeps serving while the writes wait
            await asyncio.sleep(0.005)
            await db.direct_read(lambda conn: conn.dbapi.execute("SELECT 1").fetchone())
            reads += 1
        assert not writes.done()
        other.rollback()  # the other process is done
        return await writes, reads

    try:
        written, reads = asyncio.run(scenario())
    finally:
        other.close()
    assert reads == 20
    assert written == [f"waited{i}" for i in range(5)]
    assert stored(sqlite_container) == [(f"waited{i}", 1) for i in range(5)]


def test_writes_that_never_get_the_write_lock_fail_cleanly_and_write_nothing(sqlite_container: Container) -> None:
    db = sqlite_container.db
    db._group_commit.lock_wait_seconds = 0.3
    other = sqlite3.connect(str(sqlite_container.settings.data_dir / "tessera.db"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(db.direct_write(append(f"locked{i}")) for i in range(5)),
                                    return_exceptions=True)

    try:
        results = asyncio.run(scenario())
    finally:
        other.rollback()
        other.close()
    for result in results:
        assert isinstance(result, TesseraError) and result.code == Code.UNAVAILABLE, result
        assert result.error_id == "STORE-UNAV1"
    assert stored(sqlite_container) == []
    assert asyncio.run(db.direct_write(append("after"))) == "after"  # and the next write goes through
    assert stored(sqlite_container) == [("after", 1)]


def test_a_statement_runs_alike_on_a_driver_and_inside_a_sqlalchemy_transaction(container: Container) -> None:
    by_type = Statement(select(events_table.c.aggregate_id, events_table.c.sequence)
                        .where(events_table.c.aggregate_type == "test").order_by(events_table.c.aggregate_id))
    asyncio.run(container.db.direct_write(append("a")))
    container.db.run_sync(append("b"), write=True)  # on a SQLAlchemy Connection
    direct = asyncio.run(container.db.direct_read(lambda conn: by_type.all(conn, {})))
    core = container.db.run_sync(lambda conn: by_type.all(conn, {}))
    fetched = asyncio.run(container.db.fetch(by_type, {}))  # one statement, outside any transaction
    assert [(r.aggregate_id, r.sequence) for r in direct] == [("a", 1), ("b", 1)]
    assert core == direct == fetched


def test_a_fetch_reports_driver_errors_as_the_api_reports_database_errors(container: Container) -> None:
    by_id = Statement(select(events_table.c.sequence).where(events_table.c.aggregate_id == bindparam("id")))
    if container.db.is_sqlite:  # SQLite takes NUL in text: nothing matches
        assert asyncio.run(container.db.fetch(by_id, {"id": "a\x00b"})) == []
        return
    asyncio.run(container.db.direct_write(append("a")))

    async def refused_then_read() -> tuple[TesseraError, list[Any]]:  # one loop: the same pooled connection
        with pytest.raises(TesseraError) as info:
            await container.db.fetch(by_id, {"id": "a\x00b"})
        return info.value, await container.db.fetch(by_id, {"id": "a"})

    error, rows = asyncio.run(refused_then_read())
    assert error.code == Code.INVALID_ARGUMENT and error.error_id == "STORE-DATA1"
    assert [r.sequence for r in rows] == [1]


def test_driver_errors_are_reported_as_the_api_reports_database_errors(container: Container) -> None:
    async def too_long() -> Any:
        return await container.db.direct_write(append("x" * 100_000))

    if container.db.is_sqlite:  # SQLite stores any length: the same write succeeds there
        assert asyncio.run(too_long()) == "x" * 100_000
        return
    with pytest.raises(TesseraError) as info:
        asyncio.run(too_long())
    assert info.value.code == Code.INVALID_ARGUMENT and info.value.error_id == "STORE-DATA1"


def test_connections_dropped_while_idle_are_replaced_without_an_error(tmp_path: Path) -> None:
    """PostgreSQL's pooled connections are not pinged before use; a dead one is replaced and the
    transaction run again (nothing was committed), so a restart or an idle timeout costs no request."""
    import psycopg

    ping = Statement(select(literal_column("1").label("one")))
    with throwaway_pg_database() as url, migrated_container(url, tmp_path) as c:
        database = url.rsplit("/", 1)[1]

        def kill_its_connections() -> int:
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                       "WHERE datname = %s AND pid <> pg_backend_pid()", (database,)).fetchone()
            assert killed is not None
            return int(killed[0])

        def wait_until_gone() -> None:
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                for _ in range(200):
                    row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                                        "AND pid <> pg_backend_pid()", (database,)).fetchone()
                    if row is not None and row[0] == 0:
                        return
                    time.sleep(0.01)
            raise AssertionError("terminated backends did not go away")

        async def scenario() -> tuple[str, Any, str, str]:  # one loop: the pool's connections outlive each call
            await asyncio.gather(*(c.db.direct_write(append(f"before{i}")) for i in range(4)))
            assert kill_its_connections() >= 4  # the pooled connections, idle now
            after = await c.db.direct_write(append("after"))
            read = await c.db.direct_read(lambda conn: ping.first(conn, {}))
            assert kill_its_connections() >= 1
            read_again = await c.db.direct_read(lambda conn: ping.first(conn, {}).one)
            assert kill_its_connections() >= 1
            assert [row.one for row in await c.db.fetch(ping, {})] == [1]
            # A one-statement write is never sent twice; a connection that died while idle is found out
            # before it is used, so that write does not fail either.
            assert kill_its_connections() >= 1
            wait_until_gone()
            single = await c.db.direct_write(append("single"), one_statement=True)
            return after, read, read_again, single

        after, read, read_again, single = asyncio.run(scenario())
        assert after == "after" and read.one == 1 and read_again == 1 and single == "single"
        assert stored(c) == [("after", 1), *((f"before{i}", 1) for i in range(4)), ("single", 1)]


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_connection_the_server_reset_fails_fast_and_is_replaced(tmp_path: Path, loop: str) -> None:
    """A connection's socket reader stays registered between queries (store/pg_wait.py). When the
    server ends a connection, whether the loop has seen that yet or not, the next read neither hangs
    nor fails: psycopg sees the end, and the read runs again on a new connection. uvloop stops watching
    a socket that reports an error without calling its reader; that must not leave a wait unanswered."""
    import psycopg
    import uvloop

    ping = Statement(select(literal_column("1").label("one")))
    with throwaway_pg_database() as url, migrated_container(url, tmp_path) as c:
        database = url.rsplit("/", 1)[1]

        def kill_its_connections() -> None:
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))

        async def scenario() -> list[float]:
            took = []
            for pause in (0.0, 0.05, 0.0, 0.2):  # 0: the loop has not polled the socket since
                assert [row.one for row in await c.db.fetch(ping, {})] == [1]
                kill_its_connections()
                if pause:
                    await asyncio.sleep(pause)
                started = time.monotonic()
                rows = await asyncio.wait_for(c.db.fetch(ping, {}), timeout=5)
                took.append(time.monotonic() - started)
                assert [row.one for row in rows] == [1]
                assert await asyncio.wait_for(c.db.direct_write(append(f"after{pause}{len(took)}")), timeout=5)
            return took

        async def on_one_connection() -> list[str]:
            """The same, below the pool: a query on the very connection the server ended raises."""
            from tessera.store.pg_wait import WatchedConnection

            seen = []
            for pause in (0.0, 0.05, 0.0, 0.2):
                connection = await WatchedConnection.connect(url.replace("+psycopg", ""), autocommit=True)
                try:
                    await connection.execute("SELECT 1")
                    kill_its_connections()
                    if pause:
                        await asyncio.sleep(pause)
                    with pytest.raises(psycopg.OperationalError) as lost:
                        await asyncio.wait_for(connection.execute("SELECT 1"), timeout=5)
                    seen.append(type(lost.value).__name__)
                finally:
                    connection.finish()
            return seen

        run = uvloop.run if loop == "uvloop" else asyncio.run
        took = run(scenario())
        assert max(took) < 1.0, took
        assert run(on_one_connection()) == ["AdminShutdown"] * 4


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_waits_longer_than_the_recheck_and_requests_larger_than_the_socket_buffer(loop: str) -> None:
    """The two less common waits of store/pg_wait.py: an answer that takes longer than the 0.1 s after
    which the reader is registered afresh (several times over), and a request too large to leave in
    one send, whose rest waits for the socket to be writable. Both answer correctly, and the
    connection goes on serving."""
    import uvloop

    from tessera.store.pg_wait import WatchedConnection

    async def scenario() -> tuple[list[Any], list[Any], list[Any]]:
        connection = await WatchedConnection.connect(PG_ADMIN_DSN, autocommit=True)
        try:
            started = time.monotonic()
            slow = await (await connection.execute("SELECT 'slept', pg_sleep(0.35)")).fetchall()
            assert time.monotonic() - started >= 0.35
            big = "x" * (16 * 1024 * 1024)
            counted = await (await connection.execute("SELECT length(%s::text)", (big,))).fetchall()
            after = await (await connection.execute("SELECT 42")).fetchall()
            return slow, counted, after
        finally:
            connection.finish()

    slow, counted, after = (uvloop.run if loop == "uvloop" else asyncio.run)(scenario())
    assert slow[0][0] == "slept"
    assert counted == [(16 * 1024 * 1024,)]
    assert after == [(42,)]


def test_a_one_statement_write_that_runs_two_is_stopped(tmp_path: Path) -> None:
    with throwaway_pg_database() as url, migrated_container(url, tmp_path) as c:
        def two(conn: Driver) -> None:
            append("one")(conn)
            append("two")(conn)

        with pytest.raises(RuntimeError, match="one-statement write ran a second statement"):
            asyncio.run(c.db.direct_write(two, one_statement=True))


def test_postgres_direct_pool_bounds_connections_and_survives_cancelled_waiters(tmp_path: Path) -> None:
    """The event loop's own pool (store/pg_direct.py): at most ``size`` connections, waiters served in
    turn, and a caller cancelled while waiting (a client gone) neither loses nor leaks a connection."""
    from sqlalchemy import func

    from tessera.store.pg_direct import PgDirect

    backend = Statement(select(func.pg_backend_pid().label("pid"), func.pg_sleep(0.02).label("slept")))
    with throwaway_pg_database() as url, migrated_container(url, tmp_path) as c:
        engine = c.db.engine
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        direct = PgDirect(engine.dialect, tuple(args), dict(kwargs), size=2)

        def read_pid(conn: Driver) -> int:
            return int(backend.first(conn, {}).pid)

        async def scenario() -> tuple[set[int], int]:
            pids = set(await asyncio.gather(*(direct.run(read_pid, write=False) for _ in range(12))))
            waiting = [asyncio.ensure_future(direct.run(read_pid, write=False)) for _ in range(6)]
            await asyncio.sleep(0.005)
            for task in waiting[1:5]:  # cancelled while queued for a connection, or while using one
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
            after = await asyncio.wait_for(asyncio.gather(*(direct.run(read_pid, write=False) for _ in range(4))),
                                           timeout=10)
            return pids, len(set(after) | pids)

        try:
            pids, all_pids = asyncio.run(scenario())
        finally:
            direct.close()
        assert len(pids) == 2  # twelve reads shared two connections
        assert all_pids <= 4  # cancelled callers may cost a connection, never an unbounded number


def test_a_session_write_over_what_was_read_writes_nothing_once_another_came_first(container: Container) -> None:
    """SetSession writes over the session as it read it, in one statement, only if no write came in between
    (else it runs again under the session's lock): a lost race must leave neither the state nor an event."""
    read = Session(id="cond-1", creator_id="creator", user_id=None, user_org_id=None, factors=Factors(),
                   metadata={}, user_agent=None, expires_at=None, created_at=1, changed_at=1, sequence=1,
                   token_hash=b"\x01" * 32)

    def write(session: Session, seen: int) -> Callable[[Any], bool]:
        return lambda conn: sessions.update_session_if_unchanged(conn, session, seen_sequence=seen, creator="creator",
                                                                 event_payload={"n": session.sequence})

    async def scenario() -> list[bool]:
        await container.db.direct_write(lambda conn: sessions.insert_session(conn, read, event_payload={}),
                                        one_statement=True)
        first = replace(read, metadata={"k": b"first"}, changed_at=2, sequence=2)
        late = replace(read, metadata={"k": b"late"}, changed_at=3, sequence=2)
        return [await container.db.direct_write(write(first, 1), one_statement=True),
                await container.db.direct_write(write(late, 1), one_statement=True),
                await container.db.direct_write(write(replace(late, sequence=3), 2), one_statement=True)]

    assert asyncio.run(scenario()) == [True, False, True]
    found = container.db.run_sync(lambda conn: sessions.get(conn, "cond-1"))
    assert found is not None and (found.sequence, found.metadata) == (3, {"k": b"late"})
    history = container.db.run_sync(lambda conn: conn.execute(
        select(events_table.c.sequence, events_table.c.type).where(events_table.c.aggregate_id == "cond-1")
        .order_by(events_table.c.sequence)).all())
    assert [tuple(r) for r in history] == [(1, "session.added"), (2, "session.changed"), (3, "session.changed")]


def test_two_reads_beside_each_other_return_what_each_returns_alone(container: Container) -> None:
    """``Beside`` (one statement for two independent reads, as PAT authentication and GetSession's
    session read run on PostgreSQL): the first read's rows, and the second's row or None, exactly as
    each statement alone gives them; nothing at all when the first finds nothing."""
    from tessera.store.direct import Beside

    for aggregate_id, sequence in (("a", 1), ("a", 2), ("b", 1)):
        asyncio.run(container.db.direct_write(append(aggregate_id, sequence)))
    by_aggregate = Statement(select(events_table.c.aggregate_id, events_table.c.sequence)
                             .where(events_table.c.aggregate_id == bindparam("first_id"))
                             .order_by(events_table.c.sequence))
    one_event = Statement(select(events_table.c.aggregate_id.label("id"), events_table.c.type)
                          .where(events_table.c.aggregate_id == bindparam("second_id"),
                                 events_table.c.sequence == 1))
    beside = Beside(by_aggregate, one_event)

    def both(first_id: str, second_id: str) -> tuple[list[Any], Any]:
        rows = asyncio.run(container.db.fetch(beside.statement, {"first_id": first_id, "second_id": second_id}))
        return beside.split(rows)

    def alone(first_id: str, second_id: str) -> tuple[list[Any], Any]:
        seconds = asyncio.run(container.db.fetch(one_event, {"second_id": second_id}))
        return asyncio.run(container.db.fetch(by_aggregate, {"first_id": first_id})), seconds[0] if seconds else None

    firsts, second = both("a", "b")
    assert (firsts, second) == alone("a", "b")
    assert [(r.aggregate_id, r.sequence) for r in firsts] == [("a", 1), ("a", 2)]
    assert (second.id, second.type) == ("b", "test.written")
    assert both("a", "missing") == (alone("a", "missing")[0], None)
    assert both("missing", "b") == ([], None)
