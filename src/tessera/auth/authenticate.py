"""Turn an ``Authorization`` header into a Principal.

Each token kind has its own prefix and resolver. Every lookup reads the database: several
processes must agree at once on a revoked token, so nothing here is cached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..clock import now_us
from ..crypto import tokens
from ..errors import unauthenticated
from ..store import users as store
from ..store.db import Database
from ..users.model import MACHINE, UserState
from .principal import Principal

Resolver = Callable[[str], Awaitable[Principal | None]]

_MAX_TOKEN_LENGTH = 2048


def bearer_token(authorization: str | None) -> str:
    """The token of a ``Bearer`` header; anything else is ``unauthenticated``."""
    if not authorization:
        raise unauthenticated("AUTH-x8n3l", "auth header missing")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN_LENGTH:
        raise unauthenticated("AUTH-7fs1e", "invalid auth header")
    return token


class Authenticator:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._resolvers: list[tuple[str, Resolver]] = [(tokens.PAT_PREFIX, self._resolve_pat)]

    def register(self, prefix: str, resolver: Resolver) -> None:
        """Add a resolver for tokens starting with ``prefix`` (sessions, OAuth access tokens…)."""
        self._resolvers.append((prefix, resolver))

    async def authenticate(self, authorization: str | None) -> Principal:
        token = bearer_token(authorization)
        for prefix, resolver in self._resolvers:
            if token.startswith(prefix):
                principal = await resolver(token)
                if principal is not None:
                    return principal
                break
        raise unauthenticated()

    async def _resolve_pat(self, token: str) -> Principal | None:
        token_hash = tokens.hash_token(token)

        found = await store.read_pat_with_grants(self.db, token_hash)
        if found is None:
            return None
        row, grants = found
        if row.state != UserState.ACTIVE:
            return None
        if row.expires_at is not None and row.expires_at <= now_us():
            return None
        return Principal(user_id=row.user_id, org_id=row.org_id, is_machine=row.kind == MACHINE,
                         method="pat", grants=grants)
