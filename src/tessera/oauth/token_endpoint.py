"""``POST /oauth/v2/token``: the JWT bearer grant (RFC 7523) and client credentials (RFC 6749 4.4).

Each grant runs in one write transaction: the key or secret lookup, the user's state, the
assertion ID's replay check and the new token are decided together, so a rejected request
leaves nothing behind and a removed key or locked user can never slip a token through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from ..clock import now_us
from ..store import machine_credentials as credential_store
from ..store import oauth as oauth_store
from ..store import users as user_store
from ..store.db import Database
from ..users.keys import key_credential
from ..users.model import UserState
from . import clients, rfc7523
from .access_tokens import AccessTokens, IssuedToken
from .errors import invalid_client, invalid_grant, invalid_request, unsupported_grant_type

CLIENT_CREDENTIALS = "client_credentials"
GRANT_TYPES = (rfc7523.GRANT_TYPE, CLIENT_CREDENTIALS)
_STANDARD_SCOPES = frozenset({"openid", "profile", "email", "phone", "address"})
_MAX_SCOPE_LENGTH = 4096


def granted_scopes(requested: str) -> tuple[str, ...]:
    """The requested scopes Tessera knows, in request order; unknown ones are dropped, as ZITADEL does."""
    if len(requested) > _MAX_SCOPE_LENGTH:
        raise invalid_request("scope is too long")
    granted: list[str] = []
    for scope in requested.split():
        if (scope in _STANDARD_SCOPES or scope.startswith("urn:zitadel:iam:")) and scope not in granted:
            granted.append(scope)
    return tuple(granted)


class TokenEndpoint:
    def __init__(self, db: Database, access_tokens: AccessTokens, issuer: str, endpoint_url: str) -> None:
        self.db = db
        self.access_tokens = access_tokens
        # RFC 7523 allows the token endpoint URL as audience; ZITADEL's SDKs send the issuer.
        self.audiences = frozenset({issuer, issuer + "/", endpoint_url})

    async def handle(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if not grant_type:
            raise invalid_request("grant_type is missing")
        if grant_type == rfc7523.GRANT_TYPE:
            issued = await self._jwt_bearer(form)
        elif grant_type == CLIENT_CREDENTIALS:
            issued = await self._client_credentials(form, authorization)
        else:
            raise unsupported_grant_type("grant_type must be one of: " + ", ".join(GRANT_TYPES))
        body: dict[str, Any] = {"access_token": issued.token, "token_type": "Bearer",
                                "expires_in": issued.expires_in}
        if issued.scopes:
            body["scope"] = " ".join(issued.scopes)
        return body

    async def _jwt_bearer(self, form: Mapping[str, str]) -> IssuedToken:
        """The assertion is the whole grant; ``client_id`` (the SDK sends the text "None") is ignored."""
        raw = form.get("assertion")
        if not raw:
            raise invalid_request("assertion is missing")
        if form.get("scope") is None:
            raise invalid_request("scope is missing")
        scopes = granted_scopes(form["scope"])
        try:
            peeked = rfc7523.peek(raw)
        except rfc7523.InvalidAssertion as exc:
            raise invalid_grant(str(exc)) from None
        await self.access_tokens.signing.ensure_current()

        def tx(conn: Connection) -> IssuedToken:
            now = now_us()
            key = credential_store.find_key(conn, key_id=peeked.key_id, user_id=peeked.issuer)
            if key is None:
                raise invalid_grant("no such key for this user")
            if key.expires_at <= now:
                raise invalid_grant("key has expired")
            try:
                assertion = rfc7523.verify(peeked, key.public_key, self.audiences, now / 1_000_000)
            except rfc7523.InvalidAssertion as exc:
                raise invalid_grant(str(exc)) from None
            user = user_store.get_user(conn, assertion.subject, for_update=True)
            if user is None or not user.is_machine:
                raise invalid_grant("no such service user")
            if user.state != UserState.ACTIVE:
                raise invalid_grant("user is not active")
            if assertion.jti is not None and not oauth_store.remember_assertion(
                    conn, issuer=user.id, jti=assertion.jti, expires_at=assertion.replay_window_ends * 1_000_000,
                    now=now):
                raise invalid_grant("assertion was already used (jti)")
            return self.access_tokens.issue(conn, user, client_id=user.id, scopes=scopes,
                                            credential=key_credential(key.id), at=now)

        return await self.db.write(tx)

    async def _client_credentials(self, form: Mapping[str, str], authorization: str | None) -> IssuedToken:
        scopes = granted_scopes(form.get("scope") or "")
        await self.access_tokens.signing.ensure_current()

        def tx(conn: Connection) -> IssuedToken:
            now = now_us()
            found = clients.authenticate(conn, form, authorization, audiences=self.audiences, now=now)
            if found is None:
                raise invalid_client("client authentication is required", basic=True)
            client, pending = found
            if pending is not None:
                pending.remember(conn, now)
            user = user_store.get_user(conn, client.user.id, for_update=True)
            if user is None or user.state != UserState.ACTIVE:
                raise invalid_client("client authentication failed")
            return self.access_tokens.issue(conn, user, client_id=client.client_id, scopes=scopes,
                                            credential=client.credential, at=now)

        return await self.db.write(tx)
