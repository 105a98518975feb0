"""Opaque bearer tokens: random, shown once, stored only as a SHA-256 hash.

Each kind carries a short readable prefix so that secret scanners and the auth layer can tell
them apart without a database round trip:

- ``tpat_``  personal access token
- ``tat_``   OAuth access token (opaque)
- ``tses_``  session token; the session ID is embedded so that verification is one keyed read
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PAT_PREFIX = "tpat_"
ACCESS_TOKEN_PREFIX = "tat_"  # noqa: S105  # a public prefix, not a secret
SESSION_TOKEN_PREFIX = "tses_"  # noqa: S105  # a public prefix, not a secret
_SECRET_BYTES = 32  # 256 bits of randomness per token


def random_secret(nbytes: int = _SECRET_BYTES) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).rstrip(b"=").decode()


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def same_hash(token: str, stored_hash: bytes | None) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    candidate = hash_token(token)
    if stored_hash is None:
        # Compare anyway so that a missing hash costs the same as a wrong one.
        hmac.compare_digest(candidate, candidate)
        return False
    return hmac.compare_digest(candidate, stored_hash)


def mint_pat() -> str:
    return PAT_PREFIX + random_secret()


def mint_access_token() -> str:
    return ACCESS_TOKEN_PREFIX + random_secret()


def mint_session_token(session_id: str) -> str:
    return f"{SESSION_TOKEN_PREFIX}{session_id}.{random_secret()}"


def session_id_of(token: str) -> str | None:
    """The session ID a session token names, or None if it is not shaped like one."""
    if not token.startswith(SESSION_TOKEN_PREFIX):
        return None
    session_id, dot, secret = token[len(SESSION_TOKEN_PREFIX) :].partition(".")
    if not dot or not session_id.isdigit() or not secret or len(session_id) > 40:
        return None
    return session_id
