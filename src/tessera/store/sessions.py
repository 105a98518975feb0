"""SQL for sessions. The session row is the current state; every write also appends one event."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    cast,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    update,
)

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
from ..users.model import UserState
from . import events
from .direct import Conn, Params, Reader, Statement
from .events import NewEvent
from .schema import events as events_table
from .schema import organizations, sessions, users

# Ended sessions stay as tombstones until pruned (schema.sessions.terminated_at). Every read path
# filters with exactly this expression, which also lets the partial index on (user_id, created_at)
# serve listings by user.
_LIVE = sessions.c.terminated_at.is_(None)

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


# Most sessions of a user, and many of an application, share one user agent: a listing decodes each
# distinct one once. The cached UserAgent is shared, like every model value it is never changed.
@functools.lru_cache(maxsize=4096)
def _user_agent_of(raw: str) -> UserAgent:
    data = json.loads(raw)
    return UserAgent(fingerprint_id=data.get("f", ""), ip=data.get("i", ""), description=data.get("d", ""),
                     header=data.get("h", {}))


_USER_COLUMNS = ("username", "kind", "display_name", "given_name", "family_name", "machine_name")


def _select() -> Any:
    """Session rows joined with the checked user's current names (a live join, as ZITADEL does), in the
    column order ``_from_row`` unpacks."""
    return (
        select(sessions, *(users.c[name] for name in _USER_COLUMNS), organizations.c.primary_domain)
        .select_from(sessions.outerjoin(users, users.c.id == sessions.c.user_id)
                     .outerjoin(organizations, organizations.c.id == users.c.org_id))
    )


# _from_row unpacks by position (by name cost more than the query in a listing); a schema change that
# reorders or adds columns must fail here, at import, not mix fields up.
_ROW_ORDER = (
    "id", "creator_id", "user_id", "user_org_id", "user_checked_at", "password_checked_at", "totp_checked_at",
    "otp_sms_checked_at", "otp_email_checked_at", "intent_checked_at", "webauthn_checked_at",
    "webauthn_user_verified", "metadata", "user_agent", "fingerprint_id", "token_hash", "expires_at", "created_at",
    "changed_at", "sequence", "terminated_at", "username", "kind", "display_name", "given_name", "family_name",
    "machine_name", "primary_domain")
if tuple(c.key for c in _select().selected_columns) != _ROW_ORDER:
    raise RuntimeError("the session select's columns changed: update _ROW_ORDER and _from_row together")


def _from_row(row: Sequence[Any]) -> Session:
    (session_id, creator_id, user_id, user_org_id, user_at, password_at, totp_at, otp_sms_at, otp_email_at,
     intent_at, webauthn_at, webauthn_verified, metadata, user_agent, _fingerprint_id, token_hash, expires_at,
     created_at, changed_at, sequence, terminated_at, username, kind, display_name, given_name, family_name,
     machine_name, primary_domain) = row
    login_name = shown_name = ""
    if username:
        login_name = f"{username}@{primary_domain}" if primary_domain else username
        if kind == "machine":
            shown_name = machine_name or username
        else:
            shown_name = display_name or f"{given_name or ''} {family_name or ''}".strip() or username
    return Session(
        id=session_id, creator_id=creator_id, user_id=user_id, user_org_id=user_org_id,
        factors=Factors(user_checked_at=user_at, password_checked_at=password_at, totp_checked_at=totp_at,
                        otp_sms_checked_at=otp_sms_at, otp_email_checked_at=otp_email_at,
                        intent_checked_at=intent_at, webauthn_checked_at=webauthn_at,
                        webauthn_user_verified=bool(webauthn_verified)),
        metadata=_decode_metadata(metadata), user_agent=_user_agent_of(user_agent) if user_agent else None,
        expires_at=expires_at, created_at=created_at, changed_at=changed_at, sequence=sequence,
        token_hash=token_hash, user_login_name=login_name, user_display_name=shown_name,
        terminated_at=terminated_at,
    )


# The hottest statements are built once: building a select and its cache key on every call cost
# more than running it (bench/RESULTS.md).
_STATE_COLUMNS = ("user_id", "user_org_id", *_FACTOR_COLUMNS, "webauthn_user_verified", "metadata", "expires_at",
                  "changed_at", "sequence", "token_hash")
_BY_ID_STATEMENT = _select().where(sessions.c.id == bindparam("session_id"))
_BY_ID_ANY = Statement(_BY_ID_STATEMENT)  # tombstones too: delete only
_BY_ID = Statement(_BY_ID_STATEMENT.where(_LIVE))
_LOCK_BY_ID_ANY = Statement(select(sessions.c.id).where(sessions.c.id == bindparam("session_id")).with_for_update())
# The row and its lock in one statement (OF sessions: the joined user and organization stay unlocked).
_LOCK_ROW_BY_ID = Statement(_BY_ID_STATEMENT.where(_LIVE).with_for_update(of=sessions))
_ROW_BY_ID = Statement(select(sessions).where(sessions.c.id == bindparam("session_id"), _LIVE))
_INSERT = Statement(insert(sessions).values({c.name: bindparam(c.name) for c in sessions.c}))
_UPDATE_WITH_EVENT = Statement(events.insert_statement(prefix="e_").add_cte(
    update(sessions).where(sessions.c.id == bindparam("s_b_session_id"))
    .values({name: bindparam("s_" + name) for name in _STATE_COLUMNS}).cte("changed_session")))
# On PostgreSQL a new session and its event are one statement (the session's INSERT in a WITH): atomic
# without BEGIN and COMMIT, one round trip where there were four.
_INSERT_WITH_EVENT = Statement(events.insert_statement(prefix="e_").add_cte(
    insert(sessions).values({c.name: bindparam("s_" + c.name) for c in sessions.c}).cte("new_session")))


def _insert_for_user(prefix: str) -> Any:
    """A new session of a user who may log in, with the user's organization taken from the user's row."""
    def value(column: Any) -> Any:
        # Typed: in a SELECT list the database cannot infer a parameter's type from the target column.
        return users.c.org_id if column.name == "user_org_id" else cast(bindparam(prefix + column.name), column.type)

    can_log_in = or_(users.c.state == int(UserState.ACTIVE), users.c.state == int(UserState.INITIAL))
    return insert(sessions).from_select(
        [c.name for c in sessions.c],
        select(*(value(c) for c in sessions.c)).where(users.c.id == bindparam(prefix + "user_id"), can_log_in))


_INSERT_FOR_USER = Statement(_insert_for_user(""))
_INSERT_FOR_USER_WITH_EVENT = Statement(events.insert_for_each(
    _insert_for_user("s_").returning(sessions.c.id).cte("new_session"), prefix="e_"))
_UPDATE_BY_ID = Statement(update(sessions).where(sessions.c.id == bindparam("b_session_id"))
                          .values({name: bindparam(name) for name in _STATE_COLUMNS}))


def _update_if_unchanged(prefix: str) -> Any:
    """The new state of a live session whose sequence is still the one it was read with."""
    return (update(sessions)
            .where(sessions.c.id == bindparam(prefix + "b_session_id"),
                   sessions.c.sequence == bindparam(prefix + "b_seen_sequence"), _LIVE)
            .values({name: bindparam(prefix + name) for name in _STATE_COLUMNS}))


_UPDATE_IF_UNCHANGED = Statement(_update_if_unchanged(""))
_UPDATE_IF_UNCHANGED_WITH_EVENT = Statement(events.insert_for_each(
    _update_if_unchanged("s_").returning(sessions.c.id).cte("changed_session"), prefix="e_"))
# A tombstone keeps what an idempotent delete needs (IDs, token hash, sequence) and drops the rest.
_TERMINATE_BY_ID = Statement(
    update(sessions).where(sessions.c.id == bindparam("b_session_id"), _LIVE)
    .values(metadata=None, user_agent=None, fingerprint_id=None, terminated_at=bindparam("terminated_at"),
            changed_at=bindparam("changed_at"), sequence=bindparam("sequence")))


def get(conn: Conn, session_id: str) -> Session | None:
    """A live session; None if it never existed, has ended or was pruned."""
    row = _BY_ID.first(conn, {"session_id": session_id})
    return _from_row(row) if row else None


async def read(db: Reader, session_id: str) -> Session | None:
    """``get`` outside a transaction."""
    return session_of(await db.fetch(*read_by_id(session_id)))


def read_by_id(session_id: str) -> tuple[Statement, Params]:
    """``read``'s statement and parameters, for a caller that runs it beside another (``session_of``)."""
    return _BY_ID, {"session_id": session_id}


def session_of(rows: list[Any]) -> Session | None:
    """The session of ``read_by_id``'s rows."""
    return _from_row(rows[0]) if rows else None


def lock(conn: Conn, session_id: str) -> Session | None:
    """Read a live session for update: concurrent writers to the same session queue up here."""
    row = _LOCK_ROW_BY_ID.first(conn, {"session_id": session_id})
    return _from_row(row) if row else None


def lock_including_ended(conn: Conn, session_id: str) -> Session | None:
    """Like ``lock``, but an ended session's tombstone too (``terminated_at`` set): for DeleteSession only."""
    if _LOCK_BY_ID_ANY.first(conn, {"session_id": session_id}) is None:
        return None
    found = _BY_ID_ANY.first(conn, {"session_id": session_id})
    return _from_row(found) if found else None


def token_hash_of(conn: Conn, session_id: str) -> tuple[bytes, int | None, Any] | None:
    """Just what bearer verification needs: hash, expiry, and the row."""
    row = _ROW_BY_ID.first(conn, {"session_id": session_id})
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


def insert_session(conn: Conn, session: Session, *, event_payload: dict[str, Any]) -> None:
    """The new session and its ``session.added`` event; on PostgreSQL in one statement, which needs no
    transaction around it (``Database.direct_write(..., one_statement=True)``)."""
    _write_with_event(conn, _INSERT_WITH_EVENT, _INSERT, _insert_values(session), _added_event(session, event_payload))


def _insert_values(session: Session) -> dict[str, Any]:
    agent = session.user_agent
    return {
        "id": session.id, "creator_id": session.creator_id, "created_at": session.created_at,
        "user_agent": encode_user_agent(agent), "fingerprint_id": (agent.fingerprint_id or None) if agent else None,
        "terminated_at": None, **_state_values(session)}


def _added_event(session: Session, payload: dict[str, Any]) -> dict[str, Any]:
    return {"aggregate_type": "session", "aggregate_id": session.id, "sequence": session.sequence,
            "event_type": "session.added", "creator": session.creator_id, "at": session.changed_at, "payload": payload}


def insert_session_for_user(conn: Conn, session: Session, *, event_payload: dict[str, Any]) -> bool:
    """``insert_session`` for a session whose user (``session.user_id``) was checked by ID, with the user's
    lookup in the same statement: the user's organization comes from its row. False, and nothing
    written, if the user does not exist or may not log in (inactive, locked)."""
    return _write_with_event(conn, _INSERT_FOR_USER_WITH_EVENT, _INSERT_FOR_USER, _insert_values(session),
                             _added_event(session, event_payload)) == 1


def update_session(conn: Conn, session: Session, *, creator: str, event_payload: dict[str, Any]) -> None:
    """The session's new state and its ``session.changed`` event (one statement on PostgreSQL)."""
    state = {"b_session_id": session.id, **_state_values(session)}
    _write_with_event(conn, _UPDATE_WITH_EVENT, _UPDATE_BY_ID, state, _changed_event(session, creator, event_payload))


def update_session_if_unchanged(conn: Conn, session: Session, *, seen_sequence: int, creator: str,
                                event_payload: dict[str, Any]) -> bool:
    """``update_session`` if the stored session is still live at ``seen_sequence`` (every write counts the
    sequence up), without waiting for or taking its lock across statements; False, and nothing
    written, if another write came first."""
    state = {"b_session_id": session.id, "b_seen_sequence": seen_sequence, **_state_values(session)}
    return _write_with_event(conn, _UPDATE_IF_UNCHANGED_WITH_EVENT, _UPDATE_IF_UNCHANGED, state,
                             _changed_event(session, creator, event_payload)) == 1


def _changed_event(session: Session, creator: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"aggregate_type": "session", "aggregate_id": session.id, "sequence": session.sequence,
            "event_type": "session.changed", "creator": creator, "at": session.changed_at, "payload": payload}


def _write_with_event(conn: Conn, together: Statement, alone: Statement, values: dict[str, Any],
                      event: dict[str, Any]) -> int:
    """``alone`` with ``values`` and then, if it wrote a row, the event; on PostgreSQL ``together`` does both
    in one statement (its session values bound as ``s_…``, the event's as ``e_…``). Returns the rows written."""
    if conn.dialect.name == "postgresql":
        return together.run(conn, {**{"s_" + k: v for k, v in values.items()}, **events.values(**event, prefix="e_")})
    written = alone.run(conn, values)
    if written:
        events.append(conn, **event)
    return written


def terminate(conn: Conn, session: Session, *, creator: str | None, at: int, reason: str) -> int:
    """End a live session, leaving a tombstone, and record why; returns the terminating event's sequence."""
    sequence = session.sequence + 1
    _TERMINATE_BY_ID.run(conn, {"b_session_id": session.id, "terminated_at": at, "changed_at": at,
                                "sequence": sequence})
    events.append(conn, aggregate_type="session", aggregate_id=session.id, sequence=sequence,
                  event_type="session.terminated", creator=creator, at=at, payload={"reason": reason})
    return sequence


def termination_event(conn: Connection, session_id: str) -> tuple[int, int] | None:
    """(sequence, time) of the event that ended a session, also after its tombstone was pruned; None if none did."""
    row = conn.execute(
        select(events_table.c.sequence, events_table.c.created_at)
        .where(events_table.c.aggregate_type == "session", events_table.c.aggregate_id == session_id,
               events_table.c.type == "session.terminated")
        .order_by(events_table.c.sequence.desc()).limit(1)).first()
    return (int(row.sequence), int(row.created_at)) if row else None


def checked_user_in_history(conn: Connection, session_id: str) -> str | None:
    """The user a (possibly terminated) session had checked, from its events; None if none was checked."""
    payloads = conn.execute(
        select(events_table.c.payload)
        .where(events_table.c.aggregate_type == "session", events_table.c.aggregate_id == session_id,
               events_table.c.payload.is_not(None))
        .order_by(events_table.c.sequence.desc())).scalars()
    for raw in payloads:
        user_id = json.loads(raw).get("userID")
        if user_id:
            return str(user_id)
    return None


def terminate_user_sessions(conn: Connection, user_id: str, *, creator: str | None, at: int, reason: str) -> int:
    """End every live session of a user (locked, deactivated or deleted), leaving tombstones; returns how many."""
    rows = conn.execute(select(sessions.c.id, sessions.c.sequence).where(sessions.c.user_id == user_id, _LIVE)
                        .with_for_update()).all()
    if not rows:
        return 0
    _TERMINATE_BY_ID.run_many(conn, [{"b_session_id": row.id, "terminated_at": at, "changed_at": at,
                                      "sequence": row.sequence + 1} for row in rows])
    events.append_many(conn, [NewEvent("session", row.id, row.sequence + 1, "session.terminated", creator, at,
                                       {"reason": reason}) for row in rows])
    return len(rows)


def clear_password_factor(conn: Connection, user_id: str, *, changed_before: int, creator: str | None) -> int:
    """Remove the password factor from a user's sessions checked before a password change."""
    rows = conn.execute(
        select(sessions.c.id, sessions.c.sequence).where(
            sessions.c.user_id == user_id, _LIVE, sessions.c.password_checked_at < changed_before).with_for_update()
    ).all()
    for row in rows:
        conn.execute(update(sessions).where(sessions.c.id == row.id).values(
            password_checked_at=None, sequence=row.sequence + 1, changed_at=changed_before))
        events.append(conn, aggregate_type="session", aggregate_id=row.id, sequence=row.sequence + 1,
                      event_type="session.password.invalidated", creator=creator, at=changed_before)
    return len(rows)


def delete_expired(conn: Connection, *, before: int, limit: int, at: int) -> int:
    """Delete up to ``limit`` sessions that expired, or tombstones of sessions that ended, before ``before``.

    Never a live unexpired session. Each deletion is recorded as a ``session.pruned`` event (written in
    one batch); rows another transaction holds are skipped, to be pruned next time.
    """
    expired = sessions.c.expires_at.is_not(None) & (sessions.c.expires_at < before)
    rows = list(conn.execute(
        select(sessions.c.id, sessions.c.sequence, sessions.c.terminated_at).where(expired)
        .limit(limit).with_for_update(skip_locked=True)).all())
    if len(rows) < limit:
        ended = sessions.c.terminated_at.is_not(None) & (sessions.c.terminated_at < before) & ~expired
        rows += conn.execute(
            select(sessions.c.id, sessions.c.sequence, sessions.c.terminated_at).where(ended)
            .limit(limit - len(rows)).with_for_update(skip_locked=True)).all()
    if not rows:
        return 0
    conn.execute(delete(sessions).where(sessions.c.id.in_([row.id for row in rows])))
    events.append_many(conn, [
        NewEvent("session", row.id, row.sequence + 1, "session.pruned", None, at,
                 {"reason": "ended" if row.terminated_at is not None else "expired"})
        for row in rows])
    return len(rows)


# ---- queries ---------------------------------------------------------------------------------------


def _timestamp(column: Any, at: int, method: TimestampMethod) -> ColumnElement[bool]:
    compared: ColumnElement[bool] = {
        TimestampMethod.EQUALS: column == at,
        TimestampMethod.GREATER: column > at,
        TimestampMethod.GREATER_OR_EQUALS: column >= at,
        TimestampMethod.LESS: column < at,
        TimestampMethod.LESS_OR_EQUALS: column <= at,
    }[method]
    return compared


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
    conditions = [_LIVE, *(filter_condition(f) for f in filters)]
    visible = visibility_condition(visibility)
    if visible is not None:
        conditions.append(visible)
    where = and_(*conditions)
    total = conn.execute(select(func.count()).select_from(sessions).where(where)).scalar_one()
    if sort_by_creation and not asc:
        order = (sessions.c.created_at.desc(), sessions.c.id.desc())
    else:
        order = (sessions.c.created_at.asc(), sessions.c.id.asc())
    rows = conn.execute(_select().where(where).order_by(*order).offset(offset).limit(limit)).all()
    return total, [_from_row(r) for r in rows]
