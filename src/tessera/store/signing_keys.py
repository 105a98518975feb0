"""SQL for the instance's JWT signing keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from .schema import signing_keys


def current(conn: Connection) -> Any:
    """The newest key that still signs (id, algorithm, private_key), or None."""
    return conn.execute(
        select(signing_keys.c.id, signing_keys.c.algorithm, signing_keys.c.private_key)
        .where(signing_keys.c.retired_at.is_(None))
        .order_by(signing_keys.c.created_at.desc(), signing_keys.c.id.desc()).limit(1)
    ).first()


def published(conn: Connection, now: int) -> list[Any]:
    """Keys whose signatures may still be valid at ``now``: signing ones and recently retired ones."""
    return list(conn.execute(
        select(signing_keys.c.id, signing_keys.c.public_jwk, signing_keys.c.retired_at)
        .where(or_(signing_keys.c.published_until.is_(None), signing_keys.c.published_until > now))
        .order_by(signing_keys.c.created_at.desc(), signing_keys.c.id.desc())
    ).all())


def public_jwk(conn: Connection, key_id: str, now: int) -> str | None:
    """The public JWK (JSON) of a published key, or None."""
    value: str | None = conn.execute(
        select(signing_keys.c.public_jwk)
        .where(signing_keys.c.id == key_id,
               or_(signing_keys.c.published_until.is_(None), signing_keys.c.published_until > now))
    ).scalar()
    return value


def insert_key(conn: Connection, *, key_id: str, algorithm: str, sealed_private_key: str, public_jwk: str,
               at: int) -> None:
    conn.execute(insert(signing_keys).values(id=key_id, algorithm=algorithm, private_key=sealed_private_key,
                                             public_jwk=public_jwk, created_at=at))


def retire_all(conn: Connection, *, at: int, published_until: int) -> list[str]:
    """Stop every signing key from signing; each stays published until ``published_until``."""
    ids = [row.id for row in conn.execute(select(signing_keys.c.id).where(signing_keys.c.retired_at.is_(None)))]
    if ids:
        conn.execute(update(signing_keys).where(signing_keys.c.id.in_(ids))
                     .values(retired_at=at, published_until=published_until))
    return ids


def delete_unpublished(conn: Connection, now: int) -> int:
    """Delete retired keys whose publication window has passed; returns how many."""
    result = conn.execute(delete(signing_keys).where(signing_keys.c.published_until.is_not(None),
                                                     signing_keys.c.published_until <= now))
    return result.rowcount
