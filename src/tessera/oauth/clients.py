"""Client authentication for the token, introspection and revocation endpoints.

A client is an active machine user, authenticated by one of:

- ``client_secret_basic``: ``Authorization: Basic base64(client_id:secret)``, split at the first
  colon. The Python SDK does not URL-encode the two values, RFC 6749 says to; both readings are
  tried. ``client_id`` is the username (ZITADEL's convention) or the user ID.
- ``client_secret_post``: ``client_id`` and ``client_secret`` form fields.
- ``private_key_jwt``: ``client_assertion`` signed with a machine key, checked as a JWT grant
  (``rfc7523``); ``iss`` = ``sub`` = the user ID.

Every failure is ``invalid_client`` without saying which part was wrong.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from sqlalchemy import Connection

from ..crypto import tokens
from ..store import machine_credentials as credential_store
from ..store import oauth as oauth_store
from ..store import users as user_store
from ..users.keys import SECRET_CREDENTIAL, key_credential
from ..users.model import User, UserState
from . import rfc7523
from .errors import invalid_client, invalid_request


@dataclass(frozen=True)
class Client:
    user: User
    client_id: str
    method: str  # client_secret_basic, client_secret_post or private_key_jwt
    credential: str  # "secret" or "key:<id>": what tokens issued to this client were obtained with


@dataclass(frozen=True)
class PendingAssertionId:
    """A client assertion's ``jti`` to record; a replay is refused when recording fails."""

    issuer: str
    jti: str
    expires_at: int  # microseconds

    def remember(self, conn: Connection, now: int) -> None:
        if not oauth_store.remember_assertion(conn, issuer=self.issuer, jti=self.jti, expires_at=self.expires_at,
                                              now=now):
            raise invalid_client("client assertion was already used")


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(client_id, secret) of an ``Authorization: Basic`` header; None for no or another scheme."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client("malformed Basic credentials", basic=True) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise invalid_client("malformed Basic credentials", basic=True)
    return client_id, secret


def authenticate(conn: Connection, form: Mapping[str, str], authorization: str | None, *,
                 audiences: Collection[str], now: int) -> tuple[Client, PendingAssertionId | None] | None:
    """The authenticated client, or None when the request carries no client credentials at all."""
    basic = basic_credentials(authorization)
    posted = form.get("client_secret")
    assertion = form.get("client_assertion")
    assertion_type = form.get("client_assertion_type")
    if sum(x is not None for x in (basic, posted, assertion or assertion_type)) > 1:
        raise invalid_request("use exactly one client authentication method")
    if basic is not None:
        client_id, secret = basic
        # The SDKs send the values as they are; RFC 6749 form-encodes them first.
        candidates = [(client_id, secret)]
        if (unquote_plus(client_id), unquote_plus(secret)) != (client_id, secret):
            candidates.append((unquote_plus(client_id), unquote_plus(secret)))
        return _by_secret(conn, candidates, "client_secret_basic", basic=True), None
    if posted is not None:
        client_id = form.get("client_id") or ""
        return _by_secret(conn, [(client_id, posted)], "client_secret_post", basic=False), None
    if assertion is not None or assertion_type is not None:
        if assertion_type != rfc7523.CLIENT_ASSERTION_TYPE:
            raise invalid_client("client_assertion_type must be " + rfc7523.CLIENT_ASSERTION_TYPE)
        return _by_assertion(conn, assertion or "", form.get("client_id"), audiences, now)
    return None


def _by_secret(conn: Connection, candidates: list[tuple[str, str]], method: str, *, basic: bool) -> Client:
    for client_id, secret in candidates:
        found = credential_store.client_secret_of(conn, client_id) if client_id else None
        user_id, stored_hash = found if found is not None else ("", None)
        # Compared even without a stored hash, so that an unknown client costs the same time.
        if tokens.same_hash(secret, stored_hash):
            user = _active_machine(conn, user_id)
            if user is None:
                break
            return Client(user=user, client_id=client_id, method=method, credential=SECRET_CREDENTIAL)
    raise invalid_client("client authentication failed", basic=basic)


def _by_assertion(conn: Connection, raw: str, client_id: str | None, audiences: Collection[str],
                  now: int) -> tuple[Client, PendingAssertionId | None]:
    try:
        peeked = rfc7523.peek(raw)
        key = credential_store.find_key(conn, key_id=peeked.key_id, user_id=peeked.issuer)
        if key is None or key.expires_at <= now:
            raise rfc7523.InvalidAssertion("unknown or expired key")
        assertion = rfc7523.verify(peeked, key.public_key, audiences, now / 1_000_000)
    except rfc7523.InvalidAssertion:
        raise invalid_client("client authentication failed") from None
    if client_id not in (None, "", "None", assertion.subject):
        raise invalid_client("client authentication failed")
    user = _active_machine(conn, assertion.subject)
    if user is None:
        raise invalid_client("client authentication failed")
    pending = None
    if assertion.jti is not None:
        pending = PendingAssertionId(assertion.subject, assertion.jti, assertion.replay_window_ends * 1_000_000)
    client = Client(user=user, client_id=user.id, method="private_key_jwt",
                    credential=key_credential(assertion.key_id))
    return client, pending


def _active_machine(conn: Connection, user_id: str) -> User | None:
    user = user_store.get_user(conn, user_id)
    if user is None or not user.is_machine or user.state != UserState.ACTIVE:
        return None
    return user

