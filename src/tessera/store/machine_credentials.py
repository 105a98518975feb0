"""SQL for machine users' credentials: public keys (JWT profile) and the client secret hash."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, func, insert, select

from ..users.model import MACHINE
from .schema import machine_keys, users


def insert_key(conn: Connection, *, key_id: str, user_id: str, public_key: str, expires_at: int, at: int) -> None:
    """Store a machine key's public half."""
    conn.execute(insert(machine_keys).values(id=key_id, user_id=user_id, public_key=public_key,
                                             expires_at=expires_at, created_at=at))


def delete_key(conn: Connection, *, user_id: str, key_id: str) -> bool:
    """Remove a key of ``user_id``; False when there is none with that ID."""
    result = conn.execute(delete(machine_keys).where(machine_keys.c.id == key_id, machine_keys.c.user_id == user_id))
    return result.rowcount > 0


def find_key(conn: Connection, *, key_id: str, user_id: str) -> Any:
    """The key ``key_id`` of ``user_id`` (public_key, expires_at), or None."""
    return conn.execute(
        select(machine_keys.c.id, machine_keys.c.public_key, machine_keys.c.expires_at)
        .where(machine_keys.c.id == key_id, machine_keys.c.user_id == user_id)
    ).first()


def list_keys(conn: Connection, where: ColumnElement[bool] | None, *, offset: int, limit: int, asc: bool,
              order_by: str) -> tuple[int, list[Any]]:
    """A page of keys joined with their user's organization, and the total count."""
    condition = where if where is not None else machine_keys.c.id.is_not(None)
    total = conn.execute(select(func.count()).select_from(machine_keys).join(users).where(condition)).scalar_one()
    column = {"id": machine_keys.c.id, "user_id": machine_keys.c.user_id, "org_id": users.c.org_id,
              "expires_at": machine_keys.c.expires_at}.get(order_by, machine_keys.c.created_at)
    rows = conn.execute(
        select(machine_keys.c.id, machine_keys.c.user_id, machine_keys.c.expires_at, machine_keys.c.created_at,
               users.c.org_id)
        .join(users).where(condition)
        .order_by(column.asc() if asc else column.desc(), machine_keys.c.id)
        .offset(offset).limit(limit)
    ).all()
    return total, list(rows)


def key_conditions(*, key_ids: tuple[str, ...], user_ids: tuple[str, ...], org_ids: tuple[str, ...],
                   extra: list[ColumnElement[bool]]) -> ColumnElement[bool] | None:
    """The WHERE clause of a key search: every given criterion must hold."""
    conditions: list[ColumnElement[bool]] = list(extra)
    if key_ids:
        conditions.append(machine_keys.c.id.in_(key_ids))
    if user_ids:
        conditions.append(machine_keys.c.user_id.in_(user_ids))
    if org_ids:
        conditions.append(users.c.org_id.in_(org_ids))
    return and_(*conditions) if conditions else None


def client_secret_of(conn: Connection, client_id: str) -> tuple[str, bytes | None] | None:
    """(user ID, secret hash) of the machine user whose username, or else ID, is ``client_id``."""
    for condition in (users.c.username_lower == client_id.lower(), users.c.id == client_id):
        row = conn.execute(select(users.c.id, users.c.secret_hash)
                           .where(condition, users.c.kind == MACHINE)).first()
        if row is not None:
            return row.id, row.secret_hash
    return None
