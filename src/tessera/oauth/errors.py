"""OAuth error responses (RFC 6749 section 5.2): ``{"error", "error_description"}``.

Descriptions are short English sentences for the caller; they never contain a token, a secret,
or a detail that would tell an attacker which part of a credential was wrong.
"""

from __future__ import annotations


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400, *, basic_challenge: bool = False) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.basic_challenge = basic_challenge  # answer 401 with WWW-Authenticate: Basic

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


def invalid_client(description: str, *, basic: bool = False) -> OAuthError:
    return OAuthError("invalid_client", description, 401, basic_challenge=basic)


def unsupported_grant_type(description: str) -> OAuthError:
    return OAuthError("unsupported_grant_type", description)


def invalid_scope(description: str) -> OAuthError:
    return OAuthError("invalid_scope", description)
