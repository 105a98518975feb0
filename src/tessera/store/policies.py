"""SQL for login policies (lockout limits and forced MFA) and the users' failed-attempt counters.

The instance default has scope ``""``; an organization's own row overrides it entirely.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update

from ..users.model import UserState
from .direct import Conn, Statement
from .schema import login_policies, users


@dataclass(frozen=True)
class LoginPolicy:
    max_password_attempts: int = 0  # 0: no lockout
    max_otp_attempts: int = 0
    force_mfa: bool = False


# Built once, with no expanding IN (re-rendered on every call): the organization's row and the default.
_ORG_OR_DEFAULT = Statement(select(login_policies).where(
    or_(login_policies.c.scope == bindparam("org_scope"), login_policies.c.scope == "")))


def policy_for(conn: Conn, org_id: str | None) -> LoginPolicy:
    """The organization's policy if it has one, else the instance default."""
    rows = {r.scope: r for r in _ORG_OR_DEFAULT.all(conn, {"org_scope": org_id or ""})}
    row = rows.get(org_id or "") or rows.get("")
    if row is None:
        return LoginPolicy()
    return LoginPolicy(row.max_password_attempts, row.max_otp_attempts, bool(row.force_mfa))


def set_policy(conn: Connection, scope: str, policy: LoginPolicy) -> None:
    values = asdict(policy)
    exists = conn.execute(select(login_policies.c.scope).where(login_policies.c.scope == scope)).first()
    if exists:
        conn.execute(update(login_policies).where(login_policies.c.scope == scope).values(**values))
    else:
        conn.execute(login_policies.insert().values(scope=scope, **values))


def delete_policy(conn: Connection, scope: str) -> bool:
    return conn.execute(login_policies.delete().where(login_policies.c.scope == scope)).rowcount > 0


_SET_COUNTER = {column: Statement(update(users).where(users.c.id == bindparam("b_user_id"))
                                  .values({column: bindparam("value")}))
                for column in ("failed_password_attempts", "failed_otp_attempts")}


def set_counter(conn: Conn, user_id: str, column: str, value: int) -> None:
    _SET_COUNTER[column].run(conn, {"b_user_id": user_id, "value": value})


def for_users_row(column: Any) -> Any:
    """A login policy setting, in SQL, for the user of the row at hand: its organization's, else the
    instance default."""
    return func.coalesce(
        select(column).where(login_policies.c.scope == users.c.org_id).scalar_subquery(),
        select(column).where(login_policies.c.scope == "").scalar_subquery())


# The lockout limit that applies to the user being updated (0: none).
_PASSWORD_LIMIT = func.coalesce(for_users_row(login_policies.c.max_password_attempts), 0)
_RESERVE_PASSWORD_ATTEMPT = Statement(
    update(users)
    .where(users.c.id == bindparam("b_user_id"),
           or_(users.c.state == int(UserState.ACTIVE), users.c.state == int(UserState.INITIAL)),
           func.coalesce(users.c.password_hash, "") != "",
           or_(_PASSWORD_LIMIT == 0, users.c.failed_password_attempts < _PASSWORD_LIMIT))
    .values(failed_password_attempts=users.c.failed_password_attempts + 1)
    .returning(users.c.password_hash, users.c.failed_password_attempts))


def reserve_password_attempt(conn: Conn, user_id: str) -> tuple[str, int] | None:
    """Count a password attempt as failed until it succeeds, if the user may try one now (can log in, has a
    password, is below the lockout limit): (the password hash, the failed count with this attempt).

    One statement, so that the row is locked only while it runs; None, and nothing written, if the
    user may not try (``password_refusal`` says why).
    """
    rows = _RESERVE_PASSWORD_ATTEMPT.tuples(conn, {"b_user_id": user_id})
    return (rows[0][0], int(rows[0][1])) if rows else None
