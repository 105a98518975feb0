"""OpenID Connect Discovery: ``GET /.well-known/openid-configuration``.

Every URL is absolute, built from the issuer (the ``external_url`` setting, by default
``http://<host>:<port>``). Only endpoints Tessera serves are listed. The Python SDK reads
``token_endpoint``; resource servers read ``issuer`` and ``jwks_uri``.
"""

from __future__ import annotations

from typing import Any

from ..crypto.keys import algorithms_supported
from ..crypto.signing import ALGORITHM
from . import rfc7523
from .token_endpoint import GRANT_TYPES

DISCOVERY_PATH = "/.well-known/openid-configuration"
TOKEN_PATH = "/oauth/v2/token"  # noqa: S105  (a path, not a secret)
INTROSPECTION_PATH = "/oauth/v2/introspect"
REVOCATION_PATH = "/oauth/v2/revoke"
JWKS_PATH = "/oauth/v2/keys"

_CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def openid_configuration(issuer: str) -> dict[str, Any]:
    assertion_algorithms = algorithms_supported()
    return {
        "issuer": issuer,
        "token_endpoint": issuer + TOKEN_PATH,
        "introspection_endpoint": issuer + INTROSPECTION_PATH,
        "revocation_endpoint": issuer + REVOCATION_PATH,
        "jwks_uri": issuer + JWKS_PATH,
        "grant_types_supported": list(GRANT_TYPES),
        "scopes_supported": ["openid", "profile", "email", "phone", "address",
                             "urn:zitadel:iam:org:project:id:zitadel:aud"],
        "subject_types_supported": ["public"],
        # "none": the JWT bearer grant authenticates no client, the assertion is the grant
        "token_endpoint_auth_methods_supported": ["none", *_CLIENT_AUTH_METHODS],
        "token_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
        "introspection_endpoint_auth_methods_supported": _CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
        "revocation_endpoint_auth_methods_supported": _CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
        "access_token_signing_alg_values_supported": [ALGORITHM],
        "client_assertion_types_supported": [rfc7523.CLIENT_ASSERTION_TYPE],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "username"],
    }
