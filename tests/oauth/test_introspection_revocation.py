"""RFC 7662 introspection and RFC 7009 revocation through plain HTTP."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import ServerProcess
from ..helpers import add_human, sign_in
from .support import (
    CLIENT_ASSERTION,
    ZITADEL_SCOPES,
    ServiceUser,
    add_secret,
    admin_id,
    assertion_from_file,
    jwt_grant,
    service_user,
    user_call,
)


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def introspect(server: ServerProcess, token: str, headers: dict[str, str] | None = None,
               **form: str) -> httpx.Response:
    return httpx.post(f"{server.url}/oauth/v2/introspect", data={"token": token, **form}, headers=headers,
                      timeout=10)


def revoke(server: ServerProcess, token: str, headers: dict[str, str] | None = None, **form: str) -> httpx.Response:
    return httpx.post(f"{server.url}/oauth/v2/revoke", data={"token": token, **form}, headers=headers, timeout=10)


class Caller:
    """A service user that authenticates to introspection and revocation with its secret."""

    def __init__(self, server: ServerProcess, tmp_path: Path) -> None:
        self.user: ServiceUser = service_user(server, tmp_path)
        self.secret = add_secret(server, self.user.id)

    @property
    def headers(self) -> dict[str, str]:
        return basic(self.user.username, self.secret)


@pytest.fixture
def caller(server: ServerProcess, tmp_path: Path) -> Caller:
    return Caller(server, tmp_path)


def access_token(server: ServerProcess, user: ServiceUser) -> str:
    response = jwt_grant(server, assertion_from_file(server, user.key_file))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


# ---- introspection -------------------------------------------------------------------------------


@pytest.mark.parametrize("jwt_tokens", [False, True], ids=["opaque", "jwt"])
def test_introspecting_an_access_token(server: ServerProcess, tmp_path: Path, caller: Caller,
                                       jwt_tokens: bool) -> None:
    subject = service_user(server, tmp_path, jwt_tokens=jwt_tokens)
    token = access_token(server, subject)
    response = introspect(server, token, caller.headers)
    assert response.status_code == 200, response.text
    claims = response.json()
    assert claims["active"] is True
    assert claims["sub"] == subject.id and claims["client_id"] == subject.id
    assert claims["username"].startswith(subject.username + "@")
    assert claims["scope"] == ZITADEL_SCOPES and claims["token_type"] == "Bearer"
    assert claims["iss"] == server.url and server.url in claims["aud"]
    assert claims["exp"] - claims["iat"] == 43200 and abs(claims["iat"] - time.time()) < 60
    assert claims["jti"]
    assert response.headers["cache-control"] == "no-store"


def test_introspecting_a_pat(server: ServerProcess, caller: Caller) -> None:
    claims = introspect(server, server.admin_pat, caller.headers).json()
    assert claims["active"] is True and claims["sub"] == admin_id(server)
    assert "exp" not in claims  # the admin PAT never expires


def test_anything_invalid_is_inactive(server: ServerProcess, tmp_path: Path, caller: Caller) -> None:
    human = add_human(server)
    session_token = sign_in(server, human["name"])["sessionToken"]
    subject = service_user(server, tmp_path)
    locked_token = access_token(server, subject)
    assert user_call(server, "LockUser", {"userId": subject.id}).status_code == 200
    for token in ["garbage", "tat_" + "A" * 43, "tpat_nothing", session_token, locked_token,
                  "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "x" * 5000]:
        response = introspect(server, token, caller.headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"active": False}, token


def test_introspection_needs_an_authenticated_client(server: ServerProcess, tmp_path: Path, caller: Caller) -> None:
    token = access_token(server, service_user(server, tmp_path))
    missing = introspect(server, token)
    assert missing.status_code == 401 and missing.json()["error"] == "invalid_client"
    assert missing.headers["www-authenticate"].startswith("Basic")
    wrong = introspect(server, token, basic(caller.user.username, "wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    # A bearer token is not client authentication.
    as_bearer = introspect(server, token, {"authorization": f"Bearer {token}"})
    assert as_bearer.status_code == 401
    no_token = httpx.post(f"{server.url}/oauth/v2/introspect", data={}, headers=caller.headers, timeout=10)
    assert no_token.status_code == 400 and no_token.json()["error"] == "invalid_request"
    posted = introspect(server, token, client_id=caller.user.username, client_secret=caller.secret)
    assert posted.json()["active"] is True


def test_introspection_with_a_private_key_jwt_client_assertion(server: ServerProcess, tmp_path: Path,
                                                               caller: Caller) -> None:
    token = access_token(server, service_user(server, tmp_path))
    url = f"{server.url}/oauth/v2/introspect"
    for audience in (server.url, url):
        assertion = assertion_from_file(server, caller.user.key_file, aud=audience)
        response = introspect(server, token, client_assertion_type=CLIENT_ASSERTION, client_assertion=assertion)
        assert response.status_code == 200 and response.json()["active"] is True, response.text

    once = assertion_from_file(server, caller.user.key_file, jti=uuid.uuid4().hex)
    first = introspect(server, token, client_assertion_type=CLIENT_ASSERTION, client_assertion=once)
    assert first.json()["active"] is True
    replayed = introspect(server, token, client_assertion_type=CLIENT_ASSERTION, client_assertion=once)
    assert replayed.status_code == 401 and replayed.json()["error"] == "invalid_client"

    bad: list[dict[str, Any]] = [{"aud": "https://evil.example"}, {"exp": int(time.time()) - 10,
                                                                   "iat": int(time.time()) - 20}]
    for override in bad:
        assertion = assertion_from_file(server, caller.user.key_file, **override)
        response = introspect(server, token, client_assertion_type=CLIENT_ASSERTION, client_assertion=assertion)
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    wrong_type = introspect(server, token, client_assertion_type="urn:other",
                            client_assertion=assertion_from_file(server, caller.user.key_file))
    assert wrong_type.status_code == 401


# ---- revocation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("jwt_tokens", [False, True], ids=["opaque", "jwt"])
def test_revoking_an_own_token(server: ServerProcess, tmp_path: Path, caller: Caller, jwt_tokens: bool) -> None:
    subject = service_user(server, tmp_path, jwt_tokens=jwt_tokens)
    secret = add_secret(server, subject.id)
    token = access_token(server, subject)
    assert user_call(server, "GetUserByID", {"userId": subject.id}, token).status_code == 200

    response = revoke(server, token, basic(subject.username, secret), token_type_hint="access_token")
    assert response.status_code == 200, response.text
    assert user_call(server, "GetUserByID", {"userId": subject.id}, token).status_code == 401
    assert introspect(server, token, caller.headers).json() == {"active": False}
    # Revoking again, or revoking nonsense, is still 200.
    assert revoke(server, token, basic(subject.username, secret)).status_code == 200
    assert revoke(server, "tat_unknown", basic(subject.username, secret)).status_code == 200
    # Other tokens of the same user keep working.
    other = access_token(server, subject)
    assert user_call(server, "GetUserByID", {"userId": subject.id}, other).status_code == 200


def test_revoking_needs_the_owner_or_a_user_manager(server: ServerProcess, tmp_path: Path, caller: Caller) -> None:
    subject = service_user(server, tmp_path)
    token = access_token(server, subject)
    refused = revoke(server, token, caller.headers)
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    assert user_call(server, "GetUserByID", {"userId": subject.id}, token).status_code == 200

    admin = admin_id(server)
    admin_name = user_call(server, "GetUserByID", {"userId": admin}).json()["user"]["username"]
    admin_secret = add_secret(server, admin)
    assert revoke(server, token, basic(admin_name, admin_secret)).status_code == 200
    assert user_call(server, "GetUserByID", {"userId": subject.id}, token).status_code == 401


def test_revocation_refusals(server: ServerProcess, tmp_path: Path, caller: Caller) -> None:
    token = access_token(server, caller.user)
    missing = revoke(server, token)
    assert missing.status_code == 401 and missing.json()["error"] == "invalid_client"
    pat = revoke(server, server.admin_pat, caller.headers)
    assert pat.status_code == 400 and pat.json()["error"] == "unsupported_token_type"
    assert httpx.get(f"{server.url}/v2/users/me", headers={"authorization": f"Bearer {server.admin_pat}"},
                     timeout=10).status_code == 200
    assert user_call(server, "GetUserByID", {"userId": caller.user.id}, token).status_code == 200
