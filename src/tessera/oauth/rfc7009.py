"""RFC 7009: ``POST /oauth/v2/revoke`` for OAuth access tokens.

The caller authenticates as a client. It may revoke its own tokens, or those of users in an
organization where it holds ``user.credential.write``. An unknown, expired or already revoked
token is answered with 200, as the RFC asks; personal access tokens and session tokens are not
revoked here (``unsupported_token_type``): they have their own APIs.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection

from ..auth import permissions as perm
from ..auth.principal import Principal
from ..clock import now_us
from ..crypto import tokens
from ..store import users as user_store
from ..store.db import Database
from . import clients
from .access_tokens import AccessTokens
from .errors import OAuthError, invalid_client, invalid_request


class RevocationEndpoint:
    def __init__(self, db: Database, access_tokens: AccessTokens, issuer: str, endpoint_url: str) -> None:
        self.db = db
        self.access_tokens = access_tokens
        self.audiences = frozenset({issuer, issuer + "/", endpoint_url})

    async def handle(self, form: Mapping[str, str], authorization: str | None) -> None:
        def tx(conn: Connection) -> None:
            now = now_us()
            found = clients.authenticate(conn, form, authorization, audiences=self.audiences, now=now)
            if found is None:
                raise invalid_client("client authentication is required", basic=True)
            client, pending = found
            if pending is not None:
                pending.remember(conn, now)
            token = form.get("token")
            if not token:
                raise invalid_request("token is missing")
            if token.startswith((tokens.PAT_PREFIX, tokens.SESSION_TOKEN_PREFIX)):
                raise OAuthError("unsupported_token_type",
                                 "only OAuth access tokens are revoked here; use the User or Session Service")
            record = self.access_tokens.find(conn, token, now) if len(token) <= 4096 else None
            if record is None or not record.is_active(now):
                return
            if record.user_id != client.user.id:
                caller = Principal(user_id=client.user.id, org_id=client.user.org_id, is_machine=True,
                                   method="client", grants=user_store.grants_of(conn, client.user.id))
                if not caller.has_permission(perm.USER_CREDENTIAL_WRITE, record.row.org_id):
                    raise OAuthError("unauthorized_client", "the token was not issued to this client")
            self.access_tokens.revoke(conn, record, at=now, by=client.user.id)

        await self.db.write(tx)
