"""Machine users' credentials for OAuth: JWT profile keys and the client secret.

A key is either generated here (an RSA pair whose private half goes out once, in a ZITADEL key
file, and is never stored) or registered from the caller's public key. Keys expire; without an
expiration date they last until 9999-12-31, as in ZITADEL. The client secret is 256 random bits,
shown once and stored as its SHA-256 hash (a fast hash is enough for a random secret).

Removing a key or a secret, or replacing the secret, also revokes the access tokens obtained
with it.
"""

from __future__ import annotations

import asyncio
import builtins
import enum
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, or_

from ..auth import permissions as perm
from ..auth.principal import Principal
from ..clock import now_us, rfc3339
from ..crypto import tokens
from ..crypto.keys import UnsupportedKey, generate_rsa_key_pair, normalize_public_key
from ..errors import failed_precondition, invalid_argument, not_found
from ..ids import new_id
from ..store import events
from ..store import machine_credentials as store
from ..store import oauth as oauth_store
from ..store import users as user_store
from ..store.db import Database
from ..store.schema import machine_keys, users
from .model import User, WriteDetails
from .queries import Page

NEVER_EXPIRES = 253_402_300_799_000_000  # 9999-12-31T23:59:59Z in microseconds
SECRET_CREDENTIAL = "secret"  # noqa: S105  (a label, not a secret)
_MAX_PUBLIC_KEY_BYTES = 16_384


def key_credential(key_id: str) -> str:
    """How tokens obtained with a key name it (see oauth_access_tokens.credential)."""
    return f"key:{key_id}"


@dataclass(frozen=True)
class NewKey:
    key_id: str
    key_content: bytes  # the key file (JSON); empty when the caller brought its own public key
    created_at: int
    expires_at: int


@dataclass(frozen=True)
class NewSecret:
    secret: str
    created_at: int


@dataclass(frozen=True)
class KeyInfo:
    id: str
    user_id: str
    org_id: str
    created_at: int
    expires_at: int


class KeySort(enum.IntEnum):
    """Numbers match zitadel.user.v2.KeyFieldName."""

    UNSPECIFIED = 0
    CREATED_DATE = 1
    ID = 2
    USER_ID = 3
    ORGANIZATION_ID = 4
    KEY_EXPIRATION_DATE = 5


_SORT_COLUMN = {KeySort.ID: "id", KeySort.USER_ID: "user_id", KeySort.ORGANIZATION_ID: "org_id",
                KeySort.KEY_EXPIRATION_DATE: "expires_at"}


class TimeComparison(enum.IntEnum):
    """Numbers match zitadel.filter.v2.TimestampFilterMethod."""

    EQUALS = 0
    AFTER = 1
    AFTER_OR_EQUALS = 2
    BEFORE = 3
    BEFORE_OR_EQUALS = 4


@dataclass(frozen=True)
class KeyFilter:
    key_ids: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    org_ids: tuple[str, ...] = ()
    created: tuple[tuple[TimeComparison, int], ...] = field(default=())
    expires: tuple[tuple[TimeComparison, int], ...] = field(default=())


def _compare(column: Any, method: TimeComparison, value: int) -> ColumnElement[bool]:
    comparisons: dict[TimeComparison, ColumnElement[bool]] = {
        TimeComparison.EQUALS: column == value, TimeComparison.AFTER: column > value,
        TimeComparison.AFTER_OR_EQUALS: column >= value, TimeComparison.BEFORE: column < value,
        TimeComparison.BEFORE_OR_EQUALS: column <= value,
    }
    return comparisons[method]


def key_file(*, key_id: str, user_id: str, private_pem: str, expires_at: int) -> bytes:
    """A ZITADEL service account key file, as ``Zitadel.with_private_key`` reads it."""
    return json.dumps({"type": "serviceaccount", "keyId": key_id, "key": private_pem,
                       "expirationDate": rfc3339(expires_at), "userId": user_id}).encode()


def _user_not_found() -> Exception:
    return not_found("QUERY-Dfbg2", "User could not be found")


class MachineKeys:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _load_machine(self, conn: Connection, principal: Principal | None, user_id: str, permission: str) -> User:
        user = user_store.get_user(conn, user_id, for_update=True)
        if user is None:
            raise _user_not_found()
        if principal is not None:
            principal.require(permission, user.org_id)
        if not user.is_machine:
            raise failed_precondition("COMMAND-5M0sd", "Only machine users can have keys and secrets")
        return user

    @staticmethod
    def _record(conn: Connection, principal: Principal | None, user: User, kind: str, at: int,
                payload: dict[str, Any] | None = None, values: dict[str, Any] | None = None) -> WriteDetails:
        sequence = user_store.update_user(conn, user.id, values or {}, at=at)
        events.append(conn, aggregate_type="user", aggregate_id=user.id, sequence=sequence, event_type=kind,
                      creator=principal.user_id if principal else None, at=at, payload=payload)
        return WriteDetails(sequence=sequence, change_date=at, resource_owner=user.org_id)

    # ---- keys --------------------------------------------------------------------------------

    async def add_key(self, principal: Principal | None, user_id: str, expires_at: int | None,
                      public_key: bytes | None = None) -> NewKey:
        """Register ``public_key``, or generate a pair and return its key file (once)."""
        private_pem: str | None = None
        if public_key:
            if len(public_key) > _MAX_PUBLIC_KEY_BYTES:
                raise invalid_argument("USER-Key01", "Public key is too large")
            try:
                public_pem = normalize_public_key(public_key)
            except UnsupportedKey as exc:
                raise invalid_argument("USER-Key02", f"Public key is invalid: {exc}") from None
        else:
            private_pem, public_pem = await asyncio.to_thread(generate_rsa_key_pair)
        key_id = new_id()
        expiry = expires_at if expires_at is not None else NEVER_EXPIRES

        def tx(conn: Connection) -> NewKey:
            user = self._load_machine(conn, principal, user_id, perm.USER_CREDENTIAL_WRITE)
            at = now_us()
            if expiry <= at:
                raise invalid_argument("COMMAND-dv3t5", "Expiration date must be in the future")
            store.insert_key(conn, key_id=key_id, user_id=user.id, public_key=public_pem, expires_at=expiry, at=at)
            self._record(conn, principal, user, "user.machine.key.added", at, {"keyID": key_id})
            content = b"" if private_pem is None else key_file(
                key_id=key_id, user_id=user.id, private_pem=private_pem, expires_at=expiry)
            return NewKey(key_id=key_id, key_content=content, created_at=at, expires_at=expiry)

        return await self.db.write(tx)

    async def remove_key(self, principal: Principal | None, user_id: str, key_id: str) -> WriteDetails:
        """Delete a key; tokens obtained with it stop working."""
        def tx(conn: Connection) -> WriteDetails:
            user = self._load_machine(conn, principal, user_id, perm.USER_CREDENTIAL_WRITE)
            if not store.delete_key(conn, user_id=user.id, key_id=key_id):
                raise not_found("COMMAND-4m77G", "Key not found")
            at = now_us()
            oauth_store.revoke_by_credential(conn, user_id=user.id, credential=key_credential(key_id), at=at)
            return self._record(conn, principal, user, "user.machine.key.removed", at, {"keyID": key_id})
        return await self.db.write(tx)

    async def list_keys(self, principal: Principal | None, filters: KeyFilter, page: Page,
                        sort: KeySort) -> tuple[int, builtins.list[KeyInfo]]:
        extra = [_compare(machine_keys.c.created_at, m, v) for m, v in filters.created]
        extra += [_compare(machine_keys.c.expires_at, m, v) for m, v in filters.expires]
        if principal is not None and not principal.has_permission(perm.USER_READ):
            # the orgs where the caller may read users, and its own keys
            visible = [scope for scope, _ in principal.grants
                       if scope and principal.has_permission(perm.USER_READ, scope)]
            extra.append(or_(users.c.org_id.in_(visible), users.c.id == principal.user_id))
        where = store.key_conditions(key_ids=filters.key_ids, user_ids=filters.user_ids, org_ids=filters.org_ids,
                                     extra=extra)
        total, rows = await self.db.read(lambda conn: store.list_keys(
            conn, where, offset=page.offset, limit=page.limit, asc=page.asc,
            order_by=_SORT_COLUMN.get(sort, "created_at")))
        return total, [KeyInfo(id=r.id, user_id=r.user_id, org_id=r.org_id, created_at=r.created_at,
                               expires_at=r.expires_at) for r in rows]

    # ---- client secret -----------------------------------------------------------------------

    async def add_secret(self, principal: Principal | None, user_id: str) -> NewSecret:
        """Issue a new client secret, replacing (and revoking the tokens of) any previous one."""
        secret = tokens.random_secret()

        def tx(conn: Connection) -> NewSecret:
            user = self._load_machine(conn, principal, user_id, perm.USER_CREDENTIAL_WRITE)
            at = now_us()
            if user.has_secret:
                oauth_store.revoke_by_credential(conn, user_id=user.id, credential=SECRET_CREDENTIAL, at=at)
            self._record(conn, principal, user, "user.machine.secret.set", at,
                         values={"secret_hash": tokens.hash_token(secret)})
            return NewSecret(secret=secret, created_at=at)

        return await self.db.write(tx)

    async def remove_secret(self, principal: Principal | None, user_id: str) -> WriteDetails:
        def tx(conn: Connection) -> WriteDetails:
            user = self._load_machine(conn, principal, user_id, perm.USER_CREDENTIAL_WRITE)
            if not user.has_secret:
                raise not_found("COMMAND-s2fGh", "Client secret not found")
            at = now_us()
            oauth_store.revoke_by_credential(conn, user_id=user.id, credential=SECRET_CREDENTIAL, at=at)
            return self._record(conn, principal, user, "user.machine.secret.removed", at,
                                values={"secret_hash": None})
        return await self.db.write(tx)

