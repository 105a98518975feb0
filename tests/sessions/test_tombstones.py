"""Ended sessions as tombstones: DeleteSession stays idempotent with the last token, the ended session is
invisible everywhere else, and pruning removes it with one ``session.pruned`` audit event per session."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

import httpx
from sqlalchemy import select

from tessera.container import Container
from tessera.sessions.model import Factors, Session
from tessera.store import sessions as session_store
from tessera.store.schema import events, sessions

from ..conftest import ServerProcess
from ..helpers import connect, tessera_cli
from .support import (
    add_human,
    b64,
    call,
    failure,
    get,
    list_ids,
    machine_with_pat,
    ok,
    query,
    sign_in,
)


def session_events(server: ServerProcess, session_id: str) -> list[tuple[int, str, dict[str, Any]]]:
    rows = query(server, "SELECT sequence, type, payload FROM events WHERE aggregate_type = 'session'"
                         " AND aggregate_id = :id ORDER BY sequence", id=session_id)
    return [(int(r[0]), str(r[1]), json.loads(r[2]) if r[2] else {}) for r in rows]


def kinds(server: ServerProcess, session_id: str) -> list[str]:
    return [kind for _, kind, _ in session_events(server, session_id)]


def me(server: ServerProcess, token: str) -> int:
    return httpx.get(f"{server.url}/v2/users/me", headers={"authorization": f"Bearer {token}"}).status_code


def delete(server: ServerProcess, session_id: str, session_token: str | None = None,
           token: str | None = None) -> httpx.Response:
    body = {"sessionId": session_id}
    if session_token is not None:
        body["sessionToken"] = session_token
    return call(server, "DeleteSession", body, token)


def test_delete_twice_with_the_session_token(server: ServerProcess) -> None:
    user = add_human(server)
    created = sign_in(server, user["name"])
    sid, token = created["sessionId"], created["sessionToken"]
    _, plain = machine_with_pat(server)  # no permission at all: the token alone decides
    first = ok(delete(server, sid, token, plain))
    assert first["details"]["sequence"] == "2"
    time.sleep(0.01)
    again = ok(delete(server, sid, token, plain))
    assert again["details"] == first["details"]  # the original deletion's sequence and time
    assert ok(delete(server, sid))["details"] == first["details"]  # session.delete holder, no token
    assert kinds(server, sid) == ["session.added", "session.terminated"]  # nothing written again
    # The tombstone still checks the token: a wrong one, or one rotated away before the end, is refused.
    assert failure(delete(server, sid, token + "x", plain)) == (403, "permission_denied", "COMMAND-sGr42")
    assert failure(delete(server, sid, "wrong", plain)) == (403, "permission_denied", "COMMAND-sGr42")
    rotated = sign_in(server, user["name"])
    newer = ok(call(server, "SetSession", {"sessionId": rotated["sessionId"], "metadata": {"k": b64("v")}}))
    ok(delete(server, rotated["sessionId"], newer["sessionToken"]))
    assert failure(delete(server, rotated["sessionId"], rotated["sessionToken"], plain)) == (
        403, "permission_denied", "COMMAND-sGr42")
    assert ok(delete(server, rotated["sessionId"], newer["sessionToken"], plain))["details"]["sequence"] == "3"


def test_delete_again_without_a_token_keeps_the_permission_rules(server: ServerProcess) -> None:
    alice, bob = add_human(server), add_human(server)
    alice_bearer = sign_in(server, alice["name"])["sessionToken"]
    bob_bearer = sign_in(server, bob["name"])["sessionToken"]
    own = sign_in(server, alice["name"])
    first = ok(delete(server, own["sessionId"], token=alice_bearer))
    assert ok(delete(server, own["sessionId"], token=alice_bearer))["details"] == first["details"]
    assert failure(delete(server, own["sessionId"], token=bob_bearer))[:2] == (403, "permission_denied")


def test_an_ended_session_is_invisible_to_every_read(server: ServerProcess) -> None:
    user = add_human(server)
    created = sign_in(server, user["name"], metadata={"k": b64("v")},
                      userAgent={"fingerprintId": f"fp-{time.time_ns()}", "ip": "10.1.2.3"})
    sid, token = created["sessionId"], created["sessionToken"]
    assert me(server, token) == 200
    ok(delete(server, sid, token))

    assert failure(get(server, sid)) == (404, "not_found", "QUERY-SFeaa")
    assert failure(get(server, sid, session_token=token)) == (404, "not_found", "QUERY-SFeaa")
    assert list_ids(server, {"queries": [{"idsQuery": {"ids": [sid]}}]}) == []
    by_user = ok(call(server, "ListSessions", {"queries": [{"userIdQuery": {"id": user["id"]}}]}))
    assert by_user.get("sessions", []) == [] and "totalResult" not in by_user["details"]
    assert failure(call(server, "SetSession", {"sessionId": sid, "metadata": {"k": b64("w")}}))[:2] == (
        404, "not_found")
    assert me(server, token) == 401
    assert call(server, "ListSessions", {}, token).status_code == 401

    # The tombstone keeps only what the idempotent delete needs.
    [row] = query(server, "SELECT terminated_at, token_hash, metadata, user_agent, fingerprint_id, sequence,"
                          " changed_at FROM sessions WHERE id = :id", id=sid)
    assert row.terminated_at is not None and row.terminated_at == row.changed_at
    assert bytes(row.token_hash) == hashlib.sha256(token.encode()).digest()
    assert (row.metadata, row.user_agent, row.fingerprint_id, row.sequence) == (None, None, None, 2)


def test_ending_a_users_sessions_leaves_tombstones_and_skips_ended_ones(server: ServerProcess) -> None:
    user = add_human(server)
    live, ended = sign_in(server, user["name"]), sign_in(server, user["name"])
    first = ok(delete(server, ended["sessionId"], ended["sessionToken"]))
    ok(connect(server, "UserService", "LockUser", {"userId": user["id"]}, server.admin_pat))
    assert get(server, live["sessionId"]).status_code == 404
    assert kinds(server, live["sessionId"]) == ["session.added", "session.terminated"]
    assert kinds(server, ended["sessionId"]) == ["session.added", "session.terminated"]  # not ended twice
    # Each token still deletes idempotently, answering with its own session's end.
    assert ok(delete(server, live["sessionId"], live["sessionToken"]))["details"]["sequence"] == "2"
    assert ok(delete(server, ended["sessionId"], ended["sessionToken"]))["details"] == first["details"]

    ok(connect(server, "UserService", "UnlockUser", {"userId": user["id"]}, server.admin_pat))
    ok(connect(server, "UserService", "LockUser", {"userId": user["id"]}, server.admin_pat))
    ok(connect(server, "UserService", "UnlockUser", {"userId": user["id"]}, server.admin_pat))
    changed = connect(server, "UserService", "SetPassword",
                      {"userId": user["id"], "newPassword": {"password": "New-Passw0rd!"}}, server.admin_pat)
    ok(changed)
    for session in (live, ended):  # neither a second termination nor a password invalidation
        assert kinds(server, session["sessionId"]) == ["session.added", "session.terminated"]


def test_pruning_removes_tombstones_and_expired_sessions_with_audit_events(server: ServerProcess) -> None:
    user = add_human(server)
    ended, live = sign_in(server, user["name"]), sign_in(server, user["name"])
    expired = sign_in(server, user["name"], lifetime="1s", metadata={"secret-ish": b64("value")})
    first = ok(delete(server, ended["sessionId"], ended["sessionToken"]))
    time.sleep(1.2)
    out = tessera_cli(server, "sessions", "prune", "--expired-before", "0s")
    assert out.startswith("Deleted ") and int(out.split()[1]) >= 2

    gone = query(server, "SELECT id FROM sessions WHERE id IN (:a, :b)", a=ended["sessionId"], b=expired["sessionId"])
    assert gone == []
    assert session_events(server, ended["sessionId"])[-1] == (3, "session.pruned", {"reason": "ended"})
    assert session_events(server, expired["sessionId"])[-1] == (2, "session.pruned", {"reason": "expired"})
    assert kinds(server, live["sessionId"]) == ["session.added"]
    assert get(server, live["sessionId"]).status_code == 200

    # Once pruned, the audit log still answers a repeated delete, but the token can no longer be checked.
    assert ok(delete(server, ended["sessionId"]))["details"] == first["details"]
    assert failure(delete(server, ended["sessionId"], ended["sessionToken"])) == (
        403, "permission_denied", "COMMAND-sGr42")
    # A tombstone younger than the cut-off stays.
    recent = sign_in(server, user["name"])
    ok(delete(server, recent["sessionId"], recent["sessionToken"]))
    tessera_cli(server, "sessions", "prune", "--expired-before", "1h")
    assert ok(delete(server, recent["sessionId"], recent["sessionToken"]))["details"]["sequence"] == "2"


# ---- the store, in process, on both backends -----------------------------------------------------------------


def _session(session_id: str, *, expires_at: int | None, at: int = 1_000) -> Session:
    factors = Factors(user_checked_at=at, password_checked_at=at)
    return Session(id=session_id, creator_id="creator", user_id="user-1", user_org_id="org-1", factors=factors,
                   metadata={}, user_agent=None, expires_at=expires_at, created_at=at, changed_at=at, sequence=1,
                   token_hash=hashlib.sha256(session_id.encode()).digest())


def test_pruning_in_batches_counts_both_kinds(container: Container) -> None:
    db = container.db
    cutoff = 10_000

    def seed(conn: Any) -> None:
        for i in range(3):
            session_store.insert_session(conn, _session(f"expired-{i}", expires_at=5_000), event_payload={})
        for i in range(3):
            ended = _session(f"ended-{i}", expires_at=None)
            session_store.insert_session(conn, ended, event_payload={})
            session_store.terminate(conn, ended, creator="creator", at=2_000 + i, reason="deleted")
        # expired and ended: pruned once, as an ended session
        both = _session("both", expires_at=3_000)
        session_store.insert_session(conn, both, event_payload={})
        session_store.terminate(conn, both, creator="creator", at=4_000, reason="deleted")
        later = _session("ended-later", expires_at=None)
        session_store.insert_session(conn, later, event_payload={})
        session_store.terminate(conn, later, creator="creator", at=cutoff + 1, reason="deleted")
        session_store.insert_session(conn, _session("live", expires_at=cutoff + 1), event_payload={})
        session_store.insert_session(conn, _session("forever", expires_at=None), event_payload={})

    db.run_sync(seed, write=True)
    pruned = asyncio.run(container.sessions.prune_expired(cutoff, batch=2))
    assert pruned == 7
    left = {r.id for r in db.run_sync(lambda conn: conn.execute(select(sessions.c.id)).all())}
    assert left == {"ended-later", "live", "forever"}
    logged = db.run_sync(lambda conn: conn.execute(
        select(events.c.aggregate_id, events.c.sequence, events.c.payload, events.c.creator)
        .where(events.c.type == "session.pruned")).all())
    assert sorted((r.aggregate_id, r.sequence, json.loads(r.payload)["reason"], r.creator) for r in logged) == [
        ("both", 3, "ended", None), *((f"ended-{i}", 3, "ended", None) for i in range(3)),
        *((f"expired-{i}", 2, "expired", None) for i in range(3))]
    assert asyncio.run(container.sessions.prune_expired(cutoff, batch=2)) == 0


def test_tombstones_are_kept_out_of_reads_and_user_terminations(container: Container) -> None:
    db = container.db

    def seed(conn: Any) -> None:
        for session_id in ("a", "b"):
            session_store.insert_session(conn, _session(session_id, expires_at=None), event_payload={})
        session_store.terminate(conn, _session("a", expires_at=None), creator="creator", at=2_000, reason="deleted")

    db.run_sync(seed, write=True)
    assert db.run_sync(lambda conn: session_store.get(conn, "a")) is None
    assert db.run_sync(lambda conn: session_store.lock(conn, "a"), write=True) is None
    tombstone = db.run_sync(lambda conn: session_store.lock_including_ended(conn, "a"), write=True)
    assert tombstone is not None and (tombstone.terminated_at, tombstone.sequence) == (2_000, 2)
    ended = db.run_sync(lambda conn: session_store.terminate_user_sessions(
        conn, "user-1", creator=None, at=3_000, reason="user deactivated"), write=True)
    assert ended == 1  # only "b"; "a" had ended already
    assert db.run_sync(lambda conn: session_store.termination_event(conn, "a")) == (2, 2_000)
    assert db.run_sync(lambda conn: session_store.termination_event(conn, "b")) == (2, 3_000)
    assert db.run_sync(lambda conn: session_store.clear_password_factor(
        conn, "user-1", changed_before=4_000, creator=None), write=True) == 0
