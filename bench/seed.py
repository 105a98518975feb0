"""Bulk seeding of users and sessions, straight into the database, in the rows the store writes.

Row contents come from Tessera's own code: the schema (``tessera.store.schema``), the column
encoders (``encode_user_agent``, ``encode_metadata``), the event payload builder of the session
service, token minting and hashing, and the ID layout. Only the transport differs: one
``executemany`` on SQLite, ``COPY`` on PostgreSQL, so that a million sessions take about a
minute instead of hours of API calls.

Every seeded session has a user check and a password check (so its token is a valid bearer),
belongs to one of ``ceil(N / sessions_per_user)`` users, and has one ``session.added`` event.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, insert, select

from tessera.crypto import tokens
from tessera.ids import _EPOCH_MS
from tessera.sessions.model import UserAgent
from tessera.sessions.service import Checks, SessionChange, _event_payload
from tessera.store import schema
from tessera.store.sessions import encode_metadata, encode_user_agent

SESSION_COLUMNS = [c.name for c in schema.sessions.columns]
EVENT_COLUMNS = [c.name for c in schema.events.columns if c.name != "id"]
_BENCH_NODE = 1023  # ID node bits; seeded IDs lie in the past, so they never meet the server's
_DAY_US = 86_400_000_000


@dataclass
class SeedResult:
    users: list[tuple[str, str]]  # (user id, username)
    read_set: list[tuple[str, str, str]]  # (session id, token, user id): never written to by the benchmark
    update_set: list[str]  # session ids the update scenario may rotate
    seconds: float


def _id_at(at_us: int, counter: int) -> str:
    ms = at_us // 1000 - _EPOCH_MS
    return str((ms << 22) | (_BENCH_NODE << 12) | (counter & 0xFFF))


def _pg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _copy_users(url: str, template_id: str, count: int, prefix: str) -> list[tuple[str, str]]:
    """``count`` copies of the template user (same password hash), with their ``user.*`` events."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            template = dict(conn.execute(select(schema.users).where(schema.users.c.id == template_id)).one()._mapping)
            events = [dict(r._mapping) for r in conn.execute(
                select(schema.events).where(schema.events.c.aggregate_type == "user",
                                            schema.events.c.aggregate_id == template_id))]
            now = time.time_ns() // 1000 - 60 * _DAY_US
            users: list[tuple[str, str]] = []
            rows: list[dict[str, Any]] = []
            event_rows: list[dict[str, Any]] = []
            for i in range(count):
                user_id = _id_at(now + i * 1000, i)
                name = f"{prefix}{i:07d}"
                rows.append({**template, "id": user_id, "username": name, "username_lower": name.lower(),
                             "email": f"{name}@example.com", "email_lower": f"{name}@example.com"})
                for event in events:
                    event_rows.append({**{k: v for k, v in event.items() if k != "id"}, "aggregate_id": user_id})
                users.append((user_id, name))
            for start in range(0, len(rows), 5000):
                conn.execute(insert(schema.users), rows[start:start + 5000])
            for start in range(0, len(event_rows), 5000):
                conn.execute(insert(schema.events), event_rows[start:start + 5000])
    finally:
        engine.dispose()
    return users


def _session_rows(n: int, users: Sequence[tuple[str, str]], org_id: str, creator_id: str, keep: set[int],
                  kept: dict[int, tuple[str, str, str]]) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(session row, event row) pairs in column order; remembers the tokens of the indexes in ``keep``."""
    now = time.time_ns() // 1000
    start = now - 30 * _DAY_US
    step = max(1, (30 * _DAY_US - 60_000_000) // max(n, 1))
    agent = encode_user_agent(UserAgent(fingerprint_id="bench-fingerprint", ip="127.0.0.1",
                                        description="Mozilla/5.0 (bench)"))
    metadata = encode_metadata({})
    payloads: dict[str, str] = {}
    change = SessionChange(checks=Checks(user_id="x", password="x"))
    for i in range(n):
        user_id = users[i % len(users)][0]
        payload = payloads.get(user_id)
        if payload is None:
            payload = json.dumps(_event_payload(change, user_id, token_rotated=True),
                                 separators=(",", ":"))
            payloads[user_id] = payload
        at = start + i * step
        session_id = _id_at(at, i)
        token = tokens.mint_session_token(session_id)
        values = {
            "id": session_id, "creator_id": creator_id, "user_id": user_id, "user_org_id": org_id,
            "user_checked_at": at, "password_checked_at": at, "totp_checked_at": None, "otp_sms_checked_at": None,
            "otp_email_checked_at": None, "intent_checked_at": None, "webauthn_checked_at": None,
            "webauthn_user_verified": None, "metadata": metadata, "user_agent": agent,
            "fingerprint_id": "bench-fingerprint", "token_hash": tokens.hash_token(token),
            "expires_at": now + 30 * _DAY_US + i, "created_at": at, "changed_at": at, "sequence": 1,
            "terminated_at": None,
        }
        if i in keep:
            kept[i] = (session_id, token, user_id)
        event = {"aggregate_type": "session", "aggregate_id": session_id, "sequence": 1, "type": "session.added",
                 "payload": payload, "creator": creator_id, "created_at": at}
        yield tuple(values[c] for c in SESSION_COLUMNS), tuple(event[c] for c in EVENT_COLUMNS)


def _check_columns() -> None:
    expected = {"id", "creator_id", "user_id", "user_org_id", "user_checked_at", "password_checked_at",
                "totp_checked_at", "otp_sms_checked_at", "otp_email_checked_at", "intent_checked_at",
                "webauthn_checked_at", "webauthn_user_verified", "metadata", "user_agent", "fingerprint_id",
                "token_hash", "expires_at", "created_at", "changed_at", "sequence", "terminated_at"}
    if set(SESSION_COLUMNS) != expected:
        changed = sorted(set(SESSION_COLUMNS) ^ expected)
        raise RuntimeError(f"the sessions table changed ({changed}): update bench/seed.py")


def _chunks(rows: Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _insert_sqlite(path: Path, rows: Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        session_sql = (f"INSERT INTO sessions ({', '.join(SESSION_COLUMNS)}) "
                       f"VALUES ({', '.join('?' * len(SESSION_COLUMNS))})")
        event_sql = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
        conn.execute("BEGIN")
        for chunk in _chunks(rows, 50_000):
            conn.executemany(session_sql, [s for s, _ in chunk])
            conn.executemany(event_sql, [e for _, e in chunk])
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _insert_postgres(url: str, rows: Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> None:
    with psycopg.connect(_pg_conninfo(url)) as conn:
        conn.execute("SET synchronous_commit = off")
        for chunk in _chunks(rows, 50_000):
            with conn.cursor() as cur:
                with cur.copy(f"COPY sessions ({', '.join(SESSION_COLUMNS)}) FROM STDIN") as copy:
                    for session, _ in chunk:
                        copy.write_row(session)
                with cur.copy(f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                    for _, event in chunk:
                        copy.write_row(event)
            conn.commit()
    with psycopg.connect(_pg_conninfo(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE sessions")
        conn.execute("VACUUM ANALYZE events")
        conn.execute("VACUUM ANALYZE users")


def seed(url: str, *, sessions: int, sessions_per_user: int, template_user_id: str, org_id: str, creator_id: str,
         read_set: int, update_set: int, sqlite_path: Path | None, user_prefix: str = "bench") -> SeedResult:
    """Insert ``sessions`` sessions over ``ceil(sessions / sessions_per_user)`` copies of the template user."""
    _check_columns()
    started = time.monotonic()
    users = _copy_users(url, template_user_id, max(1, math.ceil(sessions / sessions_per_user)), user_prefix)
    rng = random.Random(secrets.randbits(64))
    wanted = rng.sample(range(sessions), min(sessions, read_set + update_set))
    keep = set(wanted)
    kept: dict[int, tuple[str, str, str]] = {}
    rows = _session_rows(sessions, users, org_id, creator_id, keep, kept)
    if sqlite_path is not None:
        _insert_sqlite(sqlite_path, rows)
    else:
        _insert_postgres(url, rows)
    reads = [kept[i] for i in wanted[:read_set]]
    updates = [kept[i][0] for i in wanted[read_set:]]
    return SeedResult(users=users, read_set=reads, update_set=updates, seconds=time.monotonic() - started)
