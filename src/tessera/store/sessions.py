"""SQL for sessions. The session row is the current state; every write also appends one event."""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, false, func, insert, or_, select, update

from ..sessions.model import (
    CreationDateFilter,
    CreatorFilter,
    ExpirationDateFilter,
    Factors,
    FingerprintFilter,
    IdsFilter,
    Session,
    SessionFilter,
    TimestampMethod,
    UserAgent,
    UserIdFilter,
    Visibility,
)
from . import events
from .schema import organizations, sessions, users

_FACTOR_COLUMNS = (
    "user_checked_at", "password_checked_at", "totp_checked_at", "otp_sms_checked_at",
    "otp_email_checked_at", "intent_checked_at", "webauthn_checked_at",
)


def encode_metadata(metadata: dict[str, bytes]) -> str | None:
    if not metadata:
        return None
    return json.dumps({k: base64.b64encode(v).decode() for k, v in sorted(metadata.items())}, separators=(",", ":"))


def _decode_metadata(raw: str | None) -> dict[str, bytes]:
    if not raw:
        return {}
    return {k: base64.b64decode(v) for k, v in json.loads(raw).items()}


def encode_user_agent(agent: UserAgent | None) -> str | None:
    if agent is None or agent.is_empty():
        return None
    data: dict[str, Any] = {}
    if agent.fingerprint_id:
        data["f"] = agent.fingerprint_id
    if agent.ip:
        data["i"] = agent.ip
    if agent.description:
        data["d"] = agent.description
    if agent.header:
        data["h"] = agent.header
    return json.dumps(data, separators=(",", ":"))


def _decode_user_agent(raw: str | None) -> UserAgent | None:
    if not raw:
        return None
    data = json.loads(raw)
    return UserAgent(fingerprint_id=data.get("f", ""), ip=data.get("i", ""), description=data.get("d", ""),
                     header=data.get("h", {}))


def _select() -> Any:
    """Session rows joined with the checked user's current names (a live join, as ZITADEL does)."""
    return (
        select(sessions, users.c.username, users.c.kind, users.c.display_name, users.c.given_name,
               users.c.family_name, users.c.machine_name, organizations.c.primary_domain)
        .select_from(sessions.outerjoin(users, users.c.id == sessions.c.user_id)
                     .outerjoin(organizations, organizations.c.id == users.c.org_id))
    )


def _from_row(row: Any) -> Session:
    login_name = display_name = ""
    if row.username:
        login_name = f"{row.username}@{row.primary_domain}" if row.primary_domain else row.username
        if row.kind == "machine":
            display_name = row.machine_name or row.username
        else:
            display_name = row.display_name or f"{row.given_name or ''} {row.family_name or ''}".strip() or row.username
    return Session(
        id=row.id, creator_id=row.creator_id, user_id=row.user_id, user_org_id=row.user_org_id,
        factors=Factors(**{c: getattr(row, c) for c in _FACTOR_COLUMNS},
                        webauthn_user_verified=bool(row.webauthn_user_verified)),
        metadata=_decode_metadata(row.metadata), user_agent=_decode_user_agent(row.user_agent),
        expires_at=row.expires_at, created_at=row.created_at, changed_at=row.changed_at,
        sequence=row.sequence, token_hash=row.token_hash, user_login_name=login_name,
        user_display_name=display_name,
    )


def get(conn: Connection, session_id: str) -> Session | None:
    row = conn.execute(_select().where(sessions.c.id == session_id)).first()
    return _from_row(row) if row else None


def lock(conn: Connection, session_id: str) -> Session | None:
    """Read a session for update: concurrent writers to the same session queue up here."""
    row = conn.execute(select(sessions).where(sessions.c.id == session_id).with_for_update()).first()
    if row is None:
        return None
    return get(conn, session_id)


def token_hash_of(conn: Connection, session_id: str) -> tuple[bytes, int | None, Any] | None:
    """Just what bearer verification needs: hash, expiry, and the row."""
    row = conn.execute(select(sessions).where(sessions.c.id == session_id)).first()
    return (row.token_hash, row.expires_at, row) if row else None


def _state_values(session: Session) -> dict[str, Any]:
    f = session.factors
    return {
        "user_id": session.user_id, "user_org_id": session.user_org_id,
        **{c: getattr(f, c) for c in _FACTOR_COLUMNS},
        "webauthn_user_verified": f.webauthn_user_verified if f.webauthn_checked_at else None,
        "metadata": encode_metadata(session.metadata),
        "expires_at": session.expires_at, "changed_at": session.changed_at, "sequence": session.sequence,
        "token_hash": session.token_hash,
    }


def insert_session(conn: Connection, session: Session, *, event_payload: dict[str, Any]) -> None:
    agent = session.user_agent
    conn.execute(insert(sessions).values(
        id=session.id, creator_id=session.creator_id, created_at=session.created_at,
        user_agent=encode_user_agent(agent), fingerprint_id=(agent.fingerprint_id or None) if agent else None,
        **_state_values(session)))
    events.append(conn, aggregate_type="session", aggregate_id=session.id, sequence=session.sequence,
                  event_type="session.added", creator=session.creator_id, at=session.changed_at,
                  payload=event_payload)


def update_session(conn: Connection, session: Session, *, creator: str, event_payload: dict[str, Any]) -> None:
    conn.execute(update(sessions).where(sessions.c.id == session.id).values(**_state_values(session)))
    events.append(conn, aggregate_type="session", aggregate_id=session.id, sequence=session.sequence,
                  event_type="session.changed", creator=creator, at=session.changed_at, payload=event_payload)


def terminate(conn: Connection, session: Session, *, creator: str | None, at: int, reason: str) -> int:
    """Delete the session row and record why; returns the terminating event's sequence."""
    conn.execute(delete(sessions).where(sessions.c.id == session.id))
    sequence = session.sequence + 1
    events.append(conn, aggregate_type="session", aggregate_id=session.id, sequence=sequence,
                  event_type="session.terminated", creator=creator, at=at, payload={"reason": reason})
    return sequence


def terminate_user_sessions(conn: Connection, user_id: str, *, creator: str | None, at: int, reason: str) -> int:
    """End every session of a user (locked, deactivated or deleted); returns how many."""
    rows = conn.execute(select(sessions.c.id, sessions.c.sequence).where(sessions.c.user_id == user_id)
                        .with_for_update()).all()
    if not rows:
        return 0
    conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
    for row in rows:
        events.append(conn, aggregate_type="session", aggregate_id=row.id, sequence=row.sequence + 1,
                      event_type="session.terminated", creator=creator, at=at, payload={"reason": reason})
    return len(rows)


def clear_password_factor(conn: Connection, user_id: str, *, changed_before: int, creator: str | None) -> int:
    """Remove the password factor from a user's sessions checked before a password change."""
    rows = conn.execute(
        select(sessions.c.id, sessions.c.sequence).where(
            sessions.c.user_id == user_id, sessions.c.password_checked_at < changed_before).with_for_update()
    ).all()
    for row in rows:
        conn.execute(update(sessions).where(sessions.c.id == row.id).values(
            password_checked_at=None, sequence=row.sequence + 1, changed_at=changed_before))
        events.append(conn, aggregate_type="session", aggregate_id=row.id, sequence=row.sequence + 1,
                      event_type="session.password.invalidated", creator=creator, at=changed_before)
    return len(rows)


def delete_expired(conn: Connection, *, before: int, limit: int) -> int:
    """Delete up to ``limit`` sessions that expired before ``before``; never a live one."""
    ids = [r.id for r in conn.execute(
        select(sessions.c.id).where(sessions.c.expires_at.is_not(None), sessions.c.expires_at < before)
        .limit(limit)).all()]
    if not ids:
        return 0
    result = conn.execute(delete(sessions).where(
        sessions.c.id.in_(ids), sessions.c.expires_at.is_not(None), sessions.c.expires_at < before))
    return int(result.rowcount)


# ---- queries ---------------------------------------------------------------------------------------


def _timestamp(column: Any, at: int, method: TimestampMethod) -> ColumnElement[bool]:
    return {
        TimestampMethod.EQUALS: column == at,
        TimestampMethod.GREATER: column > at,
        TimestampMethod.GREATER_OR_EQUALS: column >= at,
        TimestampMethod.LESS: column < at,
        TimestampMethod.LESS_OR_EQUALS: column <= at,
    }[method]


def filter_condition(f: SessionFilter) -> ColumnElement[bool]:
    match f:
        case IdsFilter(ids=ids):
            return sessions.c.id.in_(ids) if ids else false()
        case UserIdFilter(user_id=user_id):
            return sessions.c.user_id == user_id
        case CreatorFilter(creator_id=creator_id):
            return sessions.c.creator_id == creator_id
        case FingerprintFilter(fingerprint_id=fingerprint):
            # NULL never equals a value: sessions without a user agent never match.
            return and_(sessions.c.fingerprint_id.is_not(None), sessions.c.fingerprint_id == fingerprint)
        case CreationDateFilter(at=at, method=method):
            return _timestamp(sessions.c.created_at, at, method)
        case ExpirationDateFilter(at=at, method=method):
            compared = _timestamp(sessions.c.expires_at, at, method)
            if method in (TimestampMethod.GREATER, TimestampMethod.GREATER_OR_EQUALS):
                return or_(sessions.c.expires_at.is_(None), compared)  # never-expiring sessions are "later"
            return and_(sessions.c.expires_at.is_not(None), compared)
    raise TypeError(f"unsupported session filter {f!r}")


def visibility_condition(v: Visibility) -> ColumnElement[bool] | None:
    if v.everything:
        return None
    allowed = [sessions.c.creator_id == v.caller_id, sessions.c.user_id == v.caller_id]
    if v.orgs:
        allowed.append(sessions.c.user_org_id.in_(v.orgs))
    return or_(*allowed)


def search(conn: Connection, filters: list[SessionFilter], visibility: Visibility, *, offset: int, limit: int,
           sort_by_creation: bool, asc: bool) -> tuple[int, list[Session]]:
    conditions = [filter_condition(f) for f in filters]
    visible = visibility_condition(visibility)
    if visible is not None:
        conditions.append(visible)
    where = and_(*conditions) if conditions else sessions.c.id.is_not(None)
    total = conn.execute(select(func.count()).select_from(sessions).where(where)).scalar_one()
    if sort_by_creation and not asc:
        order = (sessions.c.created_at.desc(), sessions.c.id.desc())
    else:
        order = (sessions.c.created_at.asc(), sessions.c.id.asc())
    rows = conn.execute(_select().where(where).order_by(*order).offset(offset).limit(limit)).all()
    return total, [_from_row(r) for r in rows]
