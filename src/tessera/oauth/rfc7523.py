"""RFC 7523: JWTs as authorization grants and as client authentication.

A service user signs an assertion with one of its machine keys: header ``kid`` names the key,
``iss`` and ``sub`` are the user ID. The checks follow ZITADEL (zitadel/oidc
``VerifyJWTAssertion``): ``aud`` contains the issuer, ``exp`` has not passed, ``iat`` is at most
one hour old and not in the future (one second of clock leeway), ``iss == sub``, and the
signature verifies with the key found by (``kid``, ``iss``). Replay of a ``jti`` is checked by
the caller, which owns the database transaction.

This module is pure: ``peek`` reads what is needed to find the key, ``verify`` checks the
signature and the claims against that key.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from ..crypto.keys import UnsupportedKey, verification_key

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_AGE_SECONDS = 3600
LEEWAY_SECONDS = 1
MAX_ASSERTION_LENGTH = 16_384


class InvalidAssertion(ValueError):
    """The assertion is malformed, or a check failed; the message is safe to show the caller."""


@dataclass(frozen=True)
class UnverifiedAssertion:
    """What an assertion claims before its signature is checked: only good for finding the key."""

    raw: str
    key_id: str
    issuer: str


@dataclass(frozen=True)
class Assertion:
    """A verified assertion."""

    subject: str  # the user ID (== iss)
    key_id: str
    jti: str | None
    replay_window_ends: int  # seconds since the epoch after which the assertion is refused anyway


def _b64json(segment: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidAssertion("assertion is not a JWT") from exc


def peek(assertion: str) -> UnverifiedAssertion:
    """Read ``kid`` and ``iss`` of a compact JWS without trusting them."""
    if not assertion or len(assertion) > MAX_ASSERTION_LENGTH:
        raise InvalidAssertion("assertion is missing or too long")
    parts = assertion.split(".")
    if len(parts) != 3 or not all(parts):
        raise InvalidAssertion("assertion is not a signed JWT")
    header, claims = _b64json(parts[0]), _b64json(parts[1])
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidAssertion("assertion is not a JWT")
    key_id, issuer = header.get("kid"), claims.get("iss")
    if not isinstance(key_id, str) or not key_id or len(key_id) > 200:
        raise InvalidAssertion("assertion header has no key ID (kid)")
    if not isinstance(issuer, str) or not issuer or len(issuer) > 200:
        raise InvalidAssertion("assertion has no issuer (iss)")
    return UnverifiedAssertion(raw=assertion, key_id=key_id, issuer=issuer)


def _number(claims: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidAssertion(f"assertion claim {name} is missing or not a number")
    return float(value)


def verify(peeked: UnverifiedAssertion, public_key_pem: str, audiences: Collection[str], now: float) -> Assertion:
    """Check the signature with the machine key and every claim; raise InvalidAssertion on any failure."""
    try:
        key, algorithms = verification_key(public_key_pem)
        token = jwt.decode(peeked.raw, key, algorithms=list(algorithms))
    except (JoseError, UnsupportedKey, ValueError) as exc:
        raise InvalidAssertion("assertion signature is invalid") from exc
    claims = token.claims
    if token.header.get("kid") != peeked.key_id or claims.get("iss") != peeked.issuer:
        raise InvalidAssertion("assertion signature is invalid")  # cannot happen: the same bytes were verified
    if claims.get("sub") != peeked.issuer:
        raise InvalidAssertion("assertion subject (sub) must equal its issuer (iss)")
    audience = claims.get("aud")
    audience_list = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if not any(isinstance(a, str) and a in audiences for a in audience_list):
        raise InvalidAssertion("assertion audience (aud) does not contain the issuer")
    expires = _number(claims, "exp", required=True)
    issued = _number(claims, "iat", required=True)
    not_before = _number(claims, "nbf", required=False)
    assert expires is not None and issued is not None
    if expires + LEEWAY_SECONDS < now:
        raise InvalidAssertion("assertion has expired")
    if issued - LEEWAY_SECONDS > now:
        raise InvalidAssertion("assertion was issued in the future (iat)")
    if issued + MAX_AGE_SECONDS + LEEWAY_SECONDS < now:
        raise InvalidAssertion("assertion is older than one hour (iat)")
    if not_before is not None and not_before - LEEWAY_SECONDS > now:
        raise InvalidAssertion("assertion is not valid yet (nbf)")
    jti = claims.get("jti")
    if jti is not None and (not isinstance(jti, str) or not jti or len(jti) > 200):
        raise InvalidAssertion("assertion ID (jti) must be a non-empty string of at most 200 characters")
    window_end = min(expires, issued + MAX_AGE_SECONDS) + LEEWAY_SECONDS
    return Assertion(subject=peeked.issuer, key_id=peeked.key_id, jti=jti, replay_window_ends=int(window_end) + 1)
