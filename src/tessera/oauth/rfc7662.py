"""RFC 7662: ``POST /oauth/v2/introspect``.

The caller authenticates as a client (Basic secret, posted secret or ``private_key_jwt``
assertion); a client-authentication failure is the only error. Any token problem (unknown,
expired, revoked, its user no longer active, a kind that is not introspectable) answers
``{"active": false}``. Active OAuth access tokens and personal access tokens answer their claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from ..clock import now_us
from ..crypto import tokens
from ..store import users as user_store
from ..store.db import Database
from ..users.model import UserState
from . import clients
from .access_tokens import ZITADEL_API_SCOPE, AccessTokens
from .errors import invalid_client, invalid_request

INACTIVE: dict[str, Any] = {"active": False}
_MAX_TOKEN_LENGTH = 4096


class IntrospectionEndpoint:
    def __init__(self, db: Database, access_tokens: AccessTokens, issuer: str, endpoint_url: str) -> None:
        self.db = db
        self.access_tokens = access_tokens
        self.issuer = issuer
        self.audiences = frozenset({issuer, issuer + "/", endpoint_url})

    async def handle(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        def tx(conn: Connection) -> tuple[clients.PendingAssertionId | None, dict[str, Any]]:
            now = now_us()
            found = clients.authenticate(conn, form, authorization, audiences=self.audiences, now=now)
            if found is None:
                raise invalid_client("client authentication is required", basic=True)
            token = form.get("token")
            if not token:
                raise invalid_request("token is missing")
            return found[1], self._claims(conn, token, now)

        pending, claims = await self.db.read(tx)
        if pending is not None:
            await self.db.write(lambda conn: pending.remember(conn, now_us()))
        return claims

    def _claims(self, conn: Connection, token: str, now: int) -> dict[str, Any]:
        if len(token) > _MAX_TOKEN_LENGTH:
            return INACTIVE
        if token.startswith(tokens.PAT_PREFIX):
            return self._pat_claims(conn, token, now)
        record = self.access_tokens.find(conn, token, now)
        if record is None or not record.is_active(now):
            return INACTIVE
        row = record.row
        user = user_store.get_user(conn, row.user_id)
        if user is None:
            return INACTIVE
        audience = [row.client_id] + ([self.issuer] if ZITADEL_API_SCOPE in row.scopes.split() else [])
        claims: dict[str, Any] = {
            "active": True, "scope": row.scopes, "client_id": row.client_id, "token_type": "Bearer",
            "exp": row.expires_at // 1_000_000, "iat": row.created_at // 1_000_000,
            "nbf": row.created_at // 1_000_000, "sub": row.user_id, "aud": audience, "iss": self.issuer,
            "jti": row.id, "username": user.preferred_login_name,
        }
        return claims

    def _pat_claims(self, conn: Connection, token: str, now: int) -> dict[str, Any]:
        row = user_store.find_pat(conn, tokens.hash_token(token))
        if row is None or row.state != UserState.ACTIVE:
            return INACTIVE
        if row.expires_at is not None and row.expires_at <= now:
            return INACTIVE
        user = user_store.get_user(conn, row.user_id)
        if user is None:
            return INACTIVE
        claims: dict[str, Any] = {
            "active": True, "token_type": "Bearer", "iat": row.created_at // 1_000_000,
            "nbf": row.created_at // 1_000_000, "sub": row.user_id, "iss": self.issuer, "jti": row.id,
            "username": user.preferred_login_name,
        }
        if row.expires_at is not None:
            claims["exp"] = row.expires_at // 1_000_000
        return claims
