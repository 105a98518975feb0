"""The instance's RSA keys that sign JWT access tokens, published at ``/oauth/v2/keys``.

The newest key that is not retired signs. Rotation retires it and adds a new one; a retired key
stays published until every token it signed has expired (``published_until``), then it is
deleted. Private keys are stored sealed with the instance secrets key. Parsed keys are cached per
key ID: a key's material never changes, and whether a token is still valid is decided by its own
database row, read on every use.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import Connection

from ..clock import now_us
from ..ids import new_id
from ..store import events
from ..store import signing_keys as store
from ..store.db import Database
from .keys import generate_rsa_key_pair
from .sealing import Sealer

ALGORITHM = "RS256"


class SigningKeys:
    def __init__(self, db: Database, sealer: Sealer, token_lifetime_us: int) -> None:
        self.db = db
        self.sealer = sealer
        self.token_lifetime_us = token_lifetime_us
        self._private: dict[str, RSAKey] = {}
        self._public: dict[str, RSAKey] = {}
        self._current_exists = False  # once a signing key exists, rotation always leaves one

    async def ensure_current(self) -> None:
        """Create the first signing key if there is none (the key is generated outside any transaction)."""
        if self._current_exists:
            return
        if await self.db.read(store.current) is None:
            private_pem, jwk = await asyncio.to_thread(_new_key_material)

            def tx(conn: Connection) -> None:
                if store.current(conn) is None:  # another process may have been faster
                    self._insert(conn, private_pem, jwk, now_us())
            await self.db.write(tx)
        self._current_exists = True

    async def rotate(self) -> tuple[str, list[str]]:
        """Add a new signing key and retire the old ones; returns (new key ID, retired key IDs)."""
        private_pem, jwk = await asyncio.to_thread(_new_key_material)

        def tx(conn: Connection) -> tuple[str, list[str]]:
            at = now_us()
            store.delete_unpublished(conn, at)
            retired = store.retire_all(conn, at=at, published_until=at + self.token_lifetime_us)
            return self._insert(conn, private_pem, jwk, at), retired
        return await self.db.write(tx)

    def _insert(self, conn: Connection, private_pem: str, jwk: dict[str, Any], at: int) -> str:
        key_id = new_id()
        public = {**jwk, "kid": key_id, "use": "sig", "alg": ALGORITHM}
        store.insert_key(conn, key_id=key_id, algorithm=ALGORITHM, sealed_private_key=self.sealer.seal(private_pem),
                         public_jwk=json.dumps(public, separators=(",", ":")), at=at)
        events.append(conn, aggregate_type="signing_key", aggregate_id=key_id, sequence=1,
                      event_type="signing_key.added", creator=None, at=at, payload={"algorithm": ALGORITHM})
        return key_id

    def sign(self, conn: Connection, claims: dict[str, Any]) -> str:
        """A JWT of ``claims`` signed with the current key (call ``ensure_current`` first)."""
        row = store.current(conn)
        if row is None:
            raise RuntimeError("no signing key; ensure_current() was not awaited")
        key = self._private.get(row.id)
        if key is None:
            key = RSAKey.import_key(self.sealer.open(row.private_key))
            self._private[row.id] = key
        header = {"alg": ALGORITHM, "typ": "JWT", "kid": row.id}
        return jwt.encode(header, claims, key, algorithms=[ALGORITHM])

    def verification_key(self, conn: Connection, key_id: str, now: int) -> RSAKey | None:
        """The public key ``key_id`` if it is published, else None."""
        key = self._public.get(key_id)
        if key is not None:
            return key
        raw = store.public_jwk(conn, key_id, now)
        if raw is None:
            return None
        key = RSAKey.import_key(json.loads(raw))
        self._public[key_id] = key
        return key

    async def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set of every published key, newest first."""
        rows = await self.db.read(lambda conn: store.published(conn, now_us()))
        return {"keys": [json.loads(row.public_jwk) for row in rows]}

    async def describe(self) -> list[dict[str, Any]]:
        """Every published key with its state, for the CLI."""
        rows = await self.db.read(lambda conn: store.published(conn, now_us()))
        return [{"kid": row.id, "state": "retired" if row.retired_at else "signing"} for row in rows]


def _new_key_material() -> tuple[str, dict[str, Any]]:
    private_pem, _ = generate_rsa_key_pair(2048)
    public = RSAKey.import_key(private_pem).as_dict(private=False)
    return private_pem, dict(public)
