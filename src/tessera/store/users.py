"""SQL for users, organizations, memberships and personal access tokens."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    update,
)

from ..sessions.model import Factors
from ..users.model import AccessTokenType, Organization, User, UserState
from . import events, policies
from .direct import Beside, Conn, Driver, Params, Reader, Statement
from .schema import login_policies, memberships, org_domains, organizations, personal_access_tokens, sessions, users

# ---- organizations ---------------------------------------------------------------------------


def insert_org(conn: Connection, *, org_id: str, name: str, domain: str, at: int) -> None:
    conn.execute(
        insert(organizations).values(
            id=org_id, name=name, name_lower=name.lower(), state=1, primary_domain=domain,
            created_at=at, changed_at=at, sequence=1,
        )
    )
    conn.execute(
        insert(org_domains).values(domain_lower=domain.lower(), org_id=org_id, domain=domain, is_primary=True)
    )


def org_name_taken(conn: Connection, name: str) -> bool:
    query = select(organizations.c.id).where(organizations.c.name_lower == name.lower())
    return conn.execute(query).first() is not None


def domain_taken(conn: Connection, domain: str) -> bool:
    query = select(org_domains.c.org_id).where(org_domains.c.domain_lower == domain.lower())
    return conn.execute(query).first() is not None


# The statements every request runs (authentication, user reads) are built once: building a select
# and its cache key on every call cost more than running it (bench/RESULTS.md).
_DOMAINS_OF_ORGS = (select(org_domains.c.org_id, org_domains.c.domain, org_domains.c.is_primary)
                    .where(org_domains.c.org_id.in_(bindparam("org_ids", expanding=True)))
                    .order_by(org_domains.c.is_primary.desc(), org_domains.c.domain_lower))
_DOMAINS_OF_ORG = Statement(select(org_domains.c.org_id, org_domains.c.domain, org_domains.c.is_primary)
                            .where(org_domains.c.org_id == bindparam("org_id"))
                            .order_by(org_domains.c.is_primary.desc(), org_domains.c.domain_lower))
_USER_BY_ID_STATEMENT = select(users).where(users.c.id == bindparam("user_id"))
# A user with the domains of its organization (for its login names) in one query: a row per domain.
_USER_WITH_DOMAINS_BY_ID = Statement(
    select(users, org_domains.c.domain.label("org_domain"))
    .outerjoin(org_domains, org_domains.c.org_id == users.c.org_id)
    .where(users.c.id == bindparam("user_id"))
    .order_by(org_domains.c.is_primary.desc(), org_domains.c.domain_lower))
_USER_BY_ID_FOR_UPDATE = Statement(_USER_BY_ID_STATEMENT.with_for_update())
_GRANTS_OF = Statement(select(memberships.c.scope, memberships.c.role)
                       .where(memberships.c.user_id == bindparam("user_id")))
_PAT_BY_HASH_STATEMENT = (select(personal_access_tokens, users.c.org_id, users.c.kind, users.c.state)
                          .join(users, users.c.id == personal_access_tokens.c.user_id)
                          .where(personal_access_tokens.c.token_hash == bindparam("token_hash")))
_PAT_BY_HASH = Statement(_PAT_BY_HASH_STATEMENT)
# Authentication's one query: the PAT, its user, and one row per membership (scope NULL if none).
_PAT_WITH_GRANTS = Statement(
    _PAT_BY_HASH_STATEMENT.add_columns(memberships.c.scope, memberships.c.role)
    .outerjoin(memberships, memberships.c.user_id == personal_access_tokens.c.user_id))
_PASSWORD_HASH = Statement(select(users.c.password_hash).where(users.c.id == bindparam("user_id")))


def _domains_by_org(conn: Conn, org_ids: Iterable[str]) -> dict[str, list[str]]:
    ids = list(set(org_ids))
    result: dict[str, list[str]] = {i: [] for i in ids}
    if not ids:
        return result
    if len(ids) == 1 or isinstance(conn, Driver):  # the common case (one user) needs no expanding IN
        rows = [row for org_id in ids for row in _DOMAINS_OF_ORG.tuples(conn, {"org_id": org_id})]
    else:
        rows = list(conn.execute(_DOMAINS_OF_ORGS, {"org_ids": ids}))
    for org_id, domain, _primary in rows:
        result[org_id].append(domain)
    return result


def _org_from_row(row: Any, domains: list[str]) -> Organization:
    return Organization(
        id=row.id, name=row.name, state=row.state, primary_domain=row.primary_domain,
        domains=tuple(domains), created_at=row.created_at, changed_at=row.changed_at, sequence=row.sequence,
    )


def get_org(conn: Connection, org_id: str) -> Organization | None:
    row = conn.execute(select(organizations).where(organizations.c.id == org_id)).first()
    if row is None:
        return None
    return _org_from_row(row, _domains_by_org(conn, [org_id])[org_id])


def get_org_by_domain(conn: Connection, domain: str) -> Organization | None:
    org_id = conn.execute(
        select(org_domains.c.org_id).where(org_domains.c.domain_lower == domain.lower())
    ).scalar()
    return get_org(conn, org_id) if org_id else None


def list_orgs(
    conn: Connection, where: ColumnElement[bool] | None, *, offset: int, limit: int, asc: bool, order_by: str
) -> tuple[int, list[Organization]]:
    condition = where if where is not None else organizations.c.id.is_not(None)
    total = conn.execute(select(func.count()).select_from(organizations).where(condition)).scalar_one()
    column = organizations.c.name_lower if order_by == "name" else organizations.c.created_at
    rows = conn.execute(
        select(organizations).where(condition)
        .order_by(column.asc() if asc else column.desc(), organizations.c.id)
        .offset(offset).limit(limit)
    ).all()
    domains = _domains_by_org(conn, [r.id for r in rows])
    return total, [_org_from_row(r, domains[r.id]) for r in rows]


# ---- users -----------------------------------------------------------------------------------


def _user_from_row(row: Any, domains: Sequence[str], primary: str) -> User:
    return User(
        id=row.id, org_id=row.org_id, kind=row.kind, username=row.username, state=UserState(row.state),
        org_domains=tuple(domains), primary_domain=primary, created_at=row.created_at,
        changed_at=row.changed_at, sequence=row.sequence, given_name=row.given_name or "",
        family_name=row.family_name or "", nick_name=row.nick_name or "",
        display_name=row.display_name or "", preferred_language=row.preferred_language or "",
        gender=row.gender or 0, email=row.email or "", email_verified=bool(row.email_verified),
        phone=row.phone or "", phone_verified=bool(row.phone_verified),
        has_password=bool(row.password_hash), password_change_required=bool(row.password_change_required),
        password_changed_at=row.password_changed_at, totp_ready=bool(row.totp_ready),
        failed_password_attempts=row.failed_password_attempts or 0,
        failed_otp_attempts=row.failed_otp_attempts or 0, machine_name=row.machine_name or "",
        machine_description=row.machine_description or "",
        access_token_type=AccessTokenType(row.access_token_type or 0),
        has_secret=row.secret_hash is not None,
    )


def _users_from_rows(conn: Conn, rows: Sequence[Any]) -> list[User]:
    domains = _domains_by_org(conn, [r.org_id for r in rows])
    return [_user_from_row(r, domains[r.org_id], domains[r.org_id][0] if domains[r.org_id] else "") for r in rows]


def get_user(conn: Conn, user_id: str, *, for_update: bool = False) -> User | None:
    if for_update:
        row = _USER_BY_ID_FOR_UPDATE.first(conn, {"user_id": user_id})
        return _users_from_rows(conn, [row])[0] if row else None
    return _user_with_domains(_USER_WITH_DOMAINS_BY_ID.all(conn, {"user_id": user_id}))


async def read_user(db: Reader, user_id: str) -> User | None:
    """``get_user`` outside a transaction, in one query."""
    return _user_with_domains(await db.fetch(_USER_WITH_DOMAINS_BY_ID, {"user_id": user_id}))


def _user_with_domains(rows: Sequence[Any]) -> User | None:
    if not rows:
        return None
    domains = [r.org_domain for r in rows if r.org_domain is not None]
    return _user_from_row(rows[0], domains, domains[0] if domains else "")


def get_password_hash(conn: Conn, user_id: str) -> str | None:
    row = _PASSWORD_HASH.first(conn, {"user_id": user_id})
    return row.password_hash if row else None


def get_totp_secret(conn: Connection, user_id: str) -> tuple[str | None, bool, int | None]:
    row = conn.execute(
        select(users.c.totp_secret, users.c.totp_ready, users.c.totp_last_step).where(users.c.id == user_id)
    ).first()
    if row is None:
        return None, False, None
    return row.totp_secret, bool(row.totp_ready), row.totp_last_step


def login_name_condition(login_name: str) -> ColumnElement[bool]:
    """Matches ``username`` or ``username@<domain of the user's organization>``, case-insensitively."""
    name = login_name.lower()
    local, at, domain = name.rpartition("@")
    condition: ColumnElement[bool] = users.c.username_lower == name
    if at and local:
        domain_match = select(org_domains.c.org_id).where(org_domains.c.domain_lower == domain).scalar_subquery()
        condition = or_(condition, and_(users.c.username_lower == local, users.c.org_id == domain_match))
    return condition


# login_name_condition as fixed statements: for a plain name, and for one with an "@".
_BY_USERNAME = Statement(select(users).where(users.c.username_lower == bindparam("name")).limit(2))
_BY_LOGIN_NAME = Statement(select(users).where(or_(
    users.c.username_lower == bindparam("name"),
    and_(users.c.username_lower == bindparam("local"),
         users.c.org_id == select(org_domains.c.org_id).where(org_domains.c.domain_lower == bindparam("domain"))
         .scalar_subquery()))).limit(2))


def find_user_by_login_name(conn: Conn, login_name: str) -> User | None:
    name = login_name.lower()
    local, at, domain = name.rpartition("@")
    if at and local:
        found = _BY_LOGIN_NAME.all(conn, {"name": name, "local": local, "domain": domain})
    else:
        found = _BY_USERNAME.all(conn, {"name": name})
    # An exact username match wins over a username@domain match.
    rows = sorted(found, key=lambda r: bool(r.username_lower != name))
    return _users_from_rows(conn, rows[:1])[0] if rows else None


def username_taken(conn: Connection, username: str) -> bool:
    return conn.execute(select(users.c.id).where(users.c.username_lower == username.lower())).first() is not None


def user_id_taken(conn: Connection, user_id: str) -> bool:
    return conn.execute(select(users.c.id).where(users.c.id == user_id)).first() is not None


def insert_user(conn: Connection, values: dict[str, Any]) -> None:
    values = dict(values)
    values["username_lower"] = values["username"].lower()
    if values.get("email"):
        values["email_lower"] = values["email"].lower()
    conn.execute(insert(users).values(**values))


def update_user(conn: Connection, user_id: str, values: dict[str, Any], *, at: int) -> int:
    """Apply ``values`` and bump the user's sequence; returns the new sequence."""
    if "email" in values:
        values = {**values, "email_lower": (values["email"] or "").lower() or None}
    new_sequence: int = conn.execute(
        update(users).where(users.c.id == user_id)
        .values(**values, changed_at=at, sequence=users.c.sequence + 1)
        .returning(users.c.sequence)
    ).scalar_one()
    return new_sequence


def _reset_unless_locked(prefix: str) -> Any:
    return (update(users)
            .where(users.c.id == bindparam(prefix + "b_user_id"), users.c.state != int(UserState.LOCKED))
            .values(failed_password_attempts=0, changed_at=bindparam(prefix + "at"), sequence=users.c.sequence + 1)
            .returning(users.c.sequence))


_RESET_UNLESS_LOCKED = Statement(_reset_unless_locked(""))
# On PostgreSQL the reset and its event are one statement (no transaction around it).
_RESET_UNLESS_LOCKED_WITH_EVENT = Statement(events.insert_for_each(
    _reset_unless_locked("u_").cte("reset_user"), prefix="e_", sequence_from="sequence"))


def record_password_success(conn: Conn, user_id: str, *, at: int) -> bool:
    """After a correct password: the failed count back to 0 and a ``user.human.password.check.succeeded``
    event, unless the user was locked (or deleted) meanwhile; then False, and nothing written."""
    event: dict[str, Any] = {"aggregate_type": "user", "aggregate_id": user_id,
                             "event_type": "user.human.password.check.succeeded", "creator": None, "at": at}
    if conn.dialect.name == "postgresql":  # the sequence comes from the updated row
        bound = {"u_b_user_id": user_id, "u_at": at, **events.values(**event, sequence=0, prefix="e_")}
        return _RESET_UNLESS_LOCKED_WITH_EVENT.run(conn, bound) == 1
    rows = _RESET_UNLESS_LOCKED.tuples(conn, {"b_user_id": user_id, "at": at})
    if not rows:
        return False
    events.append(conn, **event, sequence=int(rows[0][0]))
    return True


def delete_user(conn: Connection, user_id: str) -> None:
    conn.execute(delete(users).where(users.c.id == user_id))


def list_users(
    conn: Connection, where: ColumnElement[bool] | None, *, offset: int, limit: int, order: ColumnElement[Any] | None
) -> tuple[int, list[User]]:
    condition = where if where is not None else users.c.id.is_not(None)
    total = conn.execute(select(func.count()).select_from(users).where(condition)).scalar_one()
    query = select(users).where(condition)
    if order is not None:
        query = query.order_by(order, users.c.id)
    rows = conn.execute(query.offset(offset).limit(limit)).all()
    return total, _users_from_rows(conn, rows)


# ---- memberships -----------------------------------------------------------------------------


def add_membership(conn: Connection, *, user_id: str, scope: str, role: str) -> None:
    conn.execute(insert(memberships).values(user_id=user_id, scope=scope, role=role))


def grants_of(conn: Conn, user_id: str) -> frozenset[tuple[str, str]]:
    return frozenset(_GRANTS_OF.tuples(conn, {"user_id": user_id}))


# ---- personal access tokens ------------------------------------------------------------------


def insert_pat(conn: Connection, *, pat_id: str, user_id: str, token_hash: bytes, expires_at: int | None,
               at: int) -> None:
    conn.execute(
        insert(personal_access_tokens).values(
            id=pat_id, user_id=user_id, token_hash=token_hash, expires_at=expires_at, created_at=at
        )
    )


def find_pat(conn: Conn, token_hash: bytes) -> Any:
    """The PAT row with this hash joined with its user's state, or None."""
    return _PAT_BY_HASH.first(conn, {"token_hash": token_hash})


async def read_pat_with_grants(db: Reader, token_hash: bytes) -> tuple[Any, frozenset[tuple[str, str]]] | None:
    """``find_pat`` and the user's grants (``grants_of``), in one query."""
    return _pat_with_grants(await db.fetch(_PAT_WITH_GRANTS, {"token_hash": token_hash}))


def pat_beside(read: Statement) -> Beside:
    """The statement of ``read_pat_with_grants`` with ``read`` beside it (``read_pat_with_grants_beside``)."""
    return Beside(_PAT_WITH_GRANTS, read)


async def read_pat_with_grants_beside(db: Reader, token_hash: bytes, beside: Beside, params: Params,
                                      ) -> tuple[tuple[Any, frozenset[tuple[str, str]]] | None, Any]:
    """``read_pat_with_grants`` and the row of the statement beside it, in one query. That row is read
    only if the PAT exists (None otherwise, as when it finds nothing)."""
    pat_rows, other = beside.split(await db.fetch(beside.statement, {**params, "token_hash": token_hash}))
    return _pat_with_grants(pat_rows), other


def _pat_with_grants(rows: list[Any]) -> tuple[Any, frozenset[tuple[str, str]]] | None:
    if not rows:
        return None
    return rows[0], frozenset((r.scope, r.role) for r in rows if r.scope is not None)


@dataclass(frozen=True, slots=True)
class SessionCaller:
    """What a session token used as a bearer stands for: the live session's token and factors, its
    user, the user's grants, and whether the user's login policy forces MFA."""

    token_hash: bytes
    expires_at: int | None
    factors: Factors
    user: User
    grants: frozenset[tuple[str, str]]
    force_mfa: bool


_SESSION_FACTORS = ("user_checked_at", "password_checked_at", "totp_checked_at", "otp_sms_checked_at",
                    "otp_email_checked_at", "intent_checked_at", "webauthn_checked_at", "webauthn_user_verified")
# A session bearer's one query: a row per domain of the user's organization and membership of the user.
_SESSION_CALLER = Statement(
    select(users, sessions.c.token_hash.label("s_token_hash"), sessions.c.expires_at.label("s_expires_at"),
           *(sessions.c[name].label("s_" + name) for name in _SESSION_FACTORS),
           policies.for_users_row(login_policies.c.force_mfa).label("force_mfa"),
           org_domains.c.domain.label("org_domain"), memberships.c.scope.label("grant_scope"),
           memberships.c.role.label("grant_role"))
    .select_from(sessions.join(users, users.c.id == sessions.c.user_id)
                 .outerjoin(org_domains, org_domains.c.org_id == users.c.org_id)
                 .outerjoin(memberships, memberships.c.user_id == users.c.id))
    .where(sessions.c.id == bindparam("session_id"), sessions.c.terminated_at.is_(None))
    .order_by(org_domains.c.is_primary.desc(), org_domains.c.domain_lower))


# Factors' fields in declaration order, ending with webauthn_user_verified (checked at import).
_session_factors_of = operator.attrgetter(*("s_" + name for name in _SESSION_FACTORS))
if tuple(f.name for f in dataclasses.fields(Factors)) != _SESSION_FACTORS:
    raise RuntimeError("Factors' fields changed: update _SESSION_FACTORS")


async def read_session_caller(db: Reader, session_id: str) -> SessionCaller | None:
    """The live session with this ID as a bearer (``SessionCaller``), in one query; None if there is no such
    session or it has no user."""
    rows = await db.fetch(_SESSION_CALLER, {"session_id": session_id})
    if not rows:
        return None
    first = rows[0]
    domains = list(dict.fromkeys(r.org_domain for r in rows if r.org_domain is not None))
    user_at, password_at, totp_at, sms_at, email_at, intent_at, webauthn_at, verified = _session_factors_of(first)
    factors = Factors(user_at, password_at, totp_at, sms_at, email_at, intent_at, webauthn_at, bool(verified))
    return SessionCaller(
        token_hash=first.s_token_hash, expires_at=first.s_expires_at, factors=factors,
        user=_user_from_row(first, domains, domains[0] if domains else ""),
        grants=frozenset((r.grant_scope, r.grant_role) for r in rows if r.grant_scope is not None),
        force_mfa=bool(first.force_mfa))


def delete_pat(conn: Connection, *, user_id: str, pat_id: str) -> bool:
    result = conn.execute(
        delete(personal_access_tokens).where(
            personal_access_tokens.c.id == pat_id, personal_access_tokens.c.user_id == user_id
        )
    )
    return result.rowcount > 0


def list_pats(conn: Connection, where: ColumnElement[bool] | None, *, offset: int, limit: int,
              asc: bool) -> tuple[int, list[Any]]:
    condition = where if where is not None else personal_access_tokens.c.id.is_not(None)
    total = conn.execute(
        select(func.count()).select_from(personal_access_tokens).join(users).where(condition)).scalar_one()
    column = personal_access_tokens.c.created_at
    rows = conn.execute(
        select(personal_access_tokens.c.id, personal_access_tokens.c.user_id, personal_access_tokens.c.expires_at,
               personal_access_tokens.c.created_at, users.c.org_id)
        .join(users).where(condition)
        .order_by(column.asc() if asc else column.desc(), personal_access_tokens.c.id)
        .offset(offset).limit(limit)
    ).all()
    return total, list(rows)


def pat_conditions(*, visible_orgs: frozenset[str] | None, user_ids: tuple[str, ...] | None,
                   token_ids: tuple[str, ...] | None, org_id: str | None) -> ColumnElement[bool] | None:
    conditions: list[ColumnElement[bool]] = []
    if visible_orgs is not None:
        conditions.append(users.c.org_id.in_(visible_orgs) if visible_orgs else false())
    if user_ids is not None:
        conditions.append(personal_access_tokens.c.user_id.in_(user_ids))
    if token_ids is not None:
        conditions.append(personal_access_tokens.c.id.in_(token_ids))
    if org_id:
        conditions.append(users.c.org_id == org_id)
    return and_(*conditions) if conditions else None
