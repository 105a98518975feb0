"""SQL for OAuth access tokens and the JWT assertion IDs already used."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .schema import oauth_access_tokens, oauth_assertion_ids, users

_TOKEN_WITH_USER = (oauth_access_tokens, users.c.org_id, users.c.kind, users.c.state, users.c.username)


def insert_token(conn: Connection, *, token_id: str, token_hash: bytes | None, user_id: str, client_id: str,
                 token_format: str, scopes: str, credential: str, at: int, expires_at: int) -> None:
    """Record an issued access token (opaque tokens by hash, JWTs by ID only)."""
    conn.execute(insert(oauth_access_tokens).values(
        id=token_id, token_hash=token_hash, user_id=user_id, client_id=client_id, format=token_format,
        scopes=scopes, credential=credential, created_at=at, expires_at=expires_at))


def find_by_hash(conn: Connection, token_hash: bytes) -> Any:
    """The opaque token with this hash joined with its user's state, or None."""
    return conn.execute(
        select(*_TOKEN_WITH_USER).join(users, users.c.id == oauth_access_tokens.c.user_id)
        .where(oauth_access_tokens.c.token_hash == token_hash)
    ).first()


def find_by_id(conn: Connection, token_id: str) -> Any:
    """The token with this ID (a JWT's ``jti``) joined with its user's state, or None."""
    return conn.execute(
        select(*_TOKEN_WITH_USER).join(users, users.c.id == oauth_access_tokens.c.user_id)
        .where(oauth_access_tokens.c.id == token_id)
    ).first()


def revoke(conn: Connection, token_id: str, *, at: int) -> bool:
    """Mark one token revoked; False when it was already revoked or does not exist."""
    result = conn.execute(update(oauth_access_tokens)
                          .where(oauth_access_tokens.c.id == token_id, oauth_access_tokens.c.revoked_at.is_(None))
                          .values(revoked_at=at))
    return result.rowcount > 0


def revoke_by_credential(conn: Connection, *, user_id: str, credential: str, at: int) -> int:
    """Revoke the live tokens ``user_id`` obtained with ``credential``; returns how many."""
    result = conn.execute(update(oauth_access_tokens)
                          .where(oauth_access_tokens.c.user_id == user_id,
                                 oauth_access_tokens.c.credential == credential,
                                 oauth_access_tokens.c.revoked_at.is_(None),
                                 oauth_access_tokens.c.expires_at > at)
                          .values(revoked_at=at))
    return result.rowcount


def delete_expired_tokens(conn: Connection, *, user_id: str, before: int) -> None:
    """Forget ``user_id``'s tokens that expired before ``before`` (they can never be valid again)."""
    conn.execute(delete(oauth_access_tokens).where(oauth_access_tokens.c.user_id == user_id,
                                                   oauth_access_tokens.c.expires_at < before))


def remember_assertion(conn: Connection, *, issuer: str, jti: str, expires_at: int, now: int) -> bool:
    """Record a JWT assertion ID until it expires; False when it was already recorded (a replay).

    The insert ignores a conflict instead of failing, so two concurrent requests with the same ID
    cannot both succeed and neither aborts its transaction.
    """
    conn.execute(delete(oauth_assertion_ids).where(oauth_assertion_ids.c.issuer == issuer,
                                                   oauth_assertion_ids.c.expires_at < now))
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (dialect_insert(oauth_assertion_ids).values(issuer=issuer, jti=jti, expires_at=expires_at)
                 .on_conflict_do_nothing().returning(oauth_assertion_ids.c.jti))
    return conn.execute(statement).first() is not None  # no row back: the ID was there already
