"""Turn an ``Authorization`` header into a Principal.

Each token kind has its own prefix and resolver. Every lookup reads the database: several
processes must agree at once on a revoked token, so nothing here is cached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..clock import now_us
from ..crypto import tokens
from ..errors import unauthenticated
from ..store import users as store
from ..store.db import Database
from ..store.direct import Beside, Params, Statement
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
        self._besides: dict[Statement, Beside] = {}  # authenticate_and_read's statements, built once
        # Whether authenticate_and_read joins the reads: on PostgreSQL; SQLite's are cheaper apart.
        self.reads_beside = db.statements_are_round_trips

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

    async def authenticate_and_read(self, authorization: str | None, read: Statement, params: Params,
                                    ) -> tuple[Principal, list[Any] | None]:
        """``authenticate``, and for a PAT also ``read`` in the same query: one round trip instead of
        two on a hot path (an application checking a session with its service user's PAT). The rows
        come back as ``read`` alone returns them (at most one); None when they were not read: the
        caller authenticated otherwise, or the database is SQLite, where two statements cost less."""
        token = bearer_token(authorization)
        if not token.startswith(tokens.PAT_PREFIX) or not self.reads_beside:
            return await self.authenticate(authorization), None
        beside = self._besides.get(read)
        if beside is None:
            beside = self._besides[read] = store.pat_beside(read)
        found, row = await store.read_pat_with_grants_beside(self.db, tokens.hash_token(token), beside, params)
        principal = _pat_principal(found)
        if principal is None:
            raise unauthenticated()
        return principal, [] if row is None else [row]

    async def _resolve_pat(self, token: str) -> Principal | None:
        return _pat_principal(await store.read_pat_with_grants(self.db, tokens.hash_token(token)))


def _pat_principal(found: tuple[Any, frozenset[tuple[str, str]]] | None) -> Principal | None:
    """The caller a PAT stands for, if it exists, has not expired, and its user is active."""
    if found is None:
        return None
    row, grants = found
    if row.state != UserState.ACTIVE:
        return None
    if row.expires_at is not None and row.expires_at <= now_us():
        return None
    return Principal(user_id=row.user_id, org_id=row.org_id, is_machine=row.kind == MACHINE,
                     method="pat", grants=grants)
