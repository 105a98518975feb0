"""OAuth access tokens: issued by the token endpoint, accepted as bearer tokens on every API.

A token is opaque (``tat_`` + 256 random bits, stored as a SHA-256 hash) unless the machine user's
access token type is JWT; then it is an RS256 JWT signed with the instance's current signing key,
whose ``jti`` names a database row. Either way every use reads that row, so revoking a token,
locking its user or removing the credential that obtained it takes effect at once, in every
process.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import Connection

from ..auth.principal import Principal
from ..clock import now_us
from ..crypto import tokens
from ..crypto.signing import ALGORITHM, SigningKeys
from ..ids import new_id
from ..store import events
from ..store import oauth as store
from ..store import users as user_store
from ..store.db import Database
from ..users.model import MACHINE, AccessTokenType, User, UserState

OPAQUE = "opaque"
JWT = "jwt"
ZITADEL_API_SCOPE = "urn:zitadel:iam:org:project:id:zitadel:aud"
JWT_PREFIX = "eyJ"  # base64url of '{"': how a compact JWS starts


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: str
    expires_in: int  # seconds
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class TokenRecord:
    """A stored access token and its user, as found by the token string."""

    row: Any  # oauth_access_tokens joined with the user's org_id, kind, state, username

    @property
    def user_id(self) -> str:
        return str(self.row.user_id)

    def is_active(self, now: int) -> bool:
        return (self.row.revoked_at is None and self.row.expires_at > now
                and self.row.state == UserState.ACTIVE)


class AccessTokens:
    def __init__(self, db: Database, signing: SigningKeys, issuer: str, lifetime_seconds: int) -> None:
        self.db = db
        self.signing = signing
        self.issuer = issuer
        self.lifetime_seconds = lifetime_seconds

    # ---- issuing ---------------------------------------------------------------------------

    def issue(self, conn: Connection, user: User, *, client_id: str, scopes: tuple[str, ...], credential: str,
              at: int) -> IssuedToken:
        """Create a token for ``user`` inside the caller's transaction.

        A JWT needs a signing key: the caller awaits ``signing.ensure_current()`` beforehand.
        """
        token_id = new_id()
        expires_at = at + self.lifetime_seconds * 1_000_000
        store.delete_expired_tokens(conn, user_id=user.id, before=at)
        if user.access_token_type == AccessTokenType.JWT:
            token_format = JWT
            token = self.signing.sign(conn, self._claims(user, token_id, client_id, scopes, at, expires_at))
            token_hash = None
        else:
            token_format = OPAQUE
            token = tokens.mint_access_token()
            token_hash = tokens.hash_token(token)
        store.insert_token(conn, token_id=token_id, token_hash=token_hash, user_id=user.id, client_id=client_id,
                           token_format=token_format, scopes=" ".join(scopes), credential=credential, at=at,
                           expires_at=expires_at)
        events.append(conn, aggregate_type="oauth_token", aggregate_id=token_id, sequence=1,
                      event_type="oauth.access_token.added", creator=user.id, at=at,
                      payload={"userID": user.id, "clientID": client_id, "format": token_format,
                               "credential": credential})
        return IssuedToken(token=token, token_id=token_id, expires_in=self.lifetime_seconds, scopes=scopes)

    def _claims(self, user: User, token_id: str, client_id: str, scopes: tuple[str, ...], at: int,
                expires_at: int) -> dict[str, Any]:
        audience = [client_id] + ([self.issuer] if ZITADEL_API_SCOPE in scopes else [])
        return {"iss": self.issuer, "sub": user.id, "aud": audience, "client_id": client_id,
                "scope": " ".join(scopes), "jti": token_id, "iat": at // 1_000_000, "nbf": at // 1_000_000,
                "exp": expires_at // 1_000_000}

    # ---- finding ---------------------------------------------------------------------------

    def find(self, conn: Connection, token: str, now: int) -> TokenRecord | None:
        """The access token ``token`` names (opaque, or a JWT whose signature verifies), or None."""
        if token.startswith(tokens.ACCESS_TOKEN_PREFIX):
            row = store.find_by_hash(conn, tokens.hash_token(token))
            return TokenRecord(row) if row is not None and row.format == OPAQUE else None
        if token.startswith(JWT_PREFIX):
            return self._find_jwt(conn, token, now)
        return None

    def _find_jwt(self, conn: Connection, token: str, now: int) -> TokenRecord | None:
        key_id = _unverified_key_id(token)
        if key_id is None:
            return None
        key = self.signing.verification_key(conn, key_id, now)
        if key is None:
            return None
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM]).claims
        except (JoseError, ValueError):
            return None
        token_id, expires = claims.get("jti"), claims.get("exp")
        if claims.get("iss") != self.issuer or not isinstance(token_id, str) or not isinstance(expires, int):
            return None
        if expires * 1_000_000 <= now:
            return None
        row = store.find_by_id(conn, token_id)
        if row is None or row.format != JWT or row.user_id != claims.get("sub"):
            return None
        return TokenRecord(row)

    # ---- as a bearer token on the APIs -----------------------------------------------------

    async def resolve(self, token: str) -> Principal | None:
        """The caller an access token authenticates (Authenticator resolver for ``tat_`` and JWTs)."""
        def tx(conn: Connection) -> Principal | None:
            now = now_us()
            record = self.find(conn, token, now)
            if record is None or not record.is_active(now):
                return None
            row = record.row
            return Principal(user_id=row.user_id, org_id=row.org_id, is_machine=row.kind == MACHINE,
                             method="access_token", grants=user_store.grants_of(conn, row.user_id))
        return await self.db.read(tx)

    # ---- revocation ------------------------------------------------------------------------

    def revoke(self, conn: Connection, record: TokenRecord, *, at: int, by: str) -> None:
        if store.revoke(conn, record.row.id, at=at):
            events.append(conn, aggregate_type="oauth_token", aggregate_id=record.row.id, sequence=2,
                          event_type="oauth.access_token.revoked", creator=by, at=at)


def _unverified_key_id(token: str) -> str | None:
    header, dot, _ = token.partition(".")
    if not dot:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(decoded, dict) or decoded.get("alg") != ALGORITHM:
        return None
    key_id = decoded.get("kid")
    return key_id if isinstance(key_id, str) and 0 < len(key_id) <= 40 else None
