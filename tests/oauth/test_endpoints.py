"""Discovery, JWKS and the token endpoint's error handling and client authentication, over plain HTTP."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from ..conftest import ServerProcess, running_server
from ..helpers import tessera_cli
from .support import (
    CLIENT_ASSERTION,
    JWT_BEARER,
    ZITADEL_SCOPES,
    add_key_file,
    add_machine,
    add_secret,
    assertion_from_file,
    bearer,
    jwt_grant,
    service_user,
    token_count,
    token_request,
    user_call,
)


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def oauth_error(response: httpx.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    assert set(body) == {"error", "error_description"}
    return str(body["error_description"])


# ---- discovery and JWKS ------------------------------------------------------------------------


def test_discovery_document(server: ServerProcess) -> None:
    response = httpx.get(f"{server.url}/.well-known/openid-configuration", timeout=10)
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == server.url
    assert doc["token_endpoint"] == f"{server.url}/oauth/v2/token"
    assert doc["jwks_uri"] == f"{server.url}/oauth/v2/keys"
    assert doc["introspection_endpoint"] == f"{server.url}/oauth/v2/introspect"
    assert doc["revocation_endpoint"] == f"{server.url}/oauth/v2/revoke"
    assert set(doc["grant_types_supported"]) == {JWT_BEARER, "client_credentials"}
    assert {"client_secret_basic", "client_secret_post", "private_key_jwt"} <= set(
        doc["token_endpoint_auth_methods_supported"])
    assert {"RS256", "ES256"} <= set(doc["token_endpoint_auth_signing_alg_values_supported"])
    assert {"client_secret_basic", "private_key_jwt"} <= set(doc["introspection_endpoint_auth_methods_supported"])
    assert doc["access_token_signing_alg_values_supported"] == ["RS256"]
    assert httpx.post(f"{server.url}/.well-known/openid-configuration", timeout=10).status_code == 405


def test_jwks_publishes_rsa_public_keys_only(server: ServerProcess) -> None:
    jwks = httpx.get(f"{server.url}/oauth/v2/keys", timeout=10).json()
    assert jwks["keys"], jwks
    for key in jwks["keys"]:
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and key["kid"]
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_external_url_is_the_issuer_and_lifetime_is_configurable(tmp_path: Path) -> None:
    env = {"TESSERA_EXTERNAL_URL": "https://id.example.com/", "TESSERA_ACCESS_TOKEN_LIFETIME_SECONDS": "900"}
    with running_server(tmp_path, "sqlite", extra_env=env) as srv:
        doc = httpx.get(f"{srv.url}/.well-known/openid-configuration", timeout=10).json()
        assert doc["issuer"] == "https://id.example.com"
        assert doc["token_endpoint"] == "https://id.example.com/oauth/v2/token"
        user = service_user(srv, tmp_path)
        # The audience must be the configured issuer, not the address the server listens on.
        refused = jwt_grant(srv, assertion_from_file(srv, user.key_file))
        assert oauth_error(refused, 400, "invalid_grant")
        for audience in ("https://id.example.com", "https://id.example.com/",
                         "https://id.example.com/oauth/v2/token"):
            granted = jwt_grant(srv, assertion_from_file(srv, user.key_file, aud=audience))
            assert granted.status_code == 200, granted.text
            assert granted.json()["expires_in"] == 900


# ---- token endpoint: malformed requests ----------------------------------------------------------


def test_token_endpoint_request_errors(server: ServerProcess, tmp_path: Path) -> None:
    user = service_user(server, tmp_path)
    assertion = assertion_from_file(server, user.key_file)
    oauth_error(token_request(server, {"assertion": assertion}), 400, "invalid_request")
    oauth_error(token_request(server, {"grant_type": "password", "username": "a", "password": "b"}), 400,
                "unsupported_grant_type")
    oauth_error(token_request(server, {"grant_type": "authorization_code", "code": "x"}), 400,
                "unsupported_grant_type")
    oauth_error(token_request(server, {"grant_type": JWT_BEARER, "scope": "openid"}), 400, "invalid_request")
    oauth_error(token_request(server, {"grant_type": JWT_BEARER, "assertion": assertion}), 400, "invalid_request")
    as_json = httpx.post(f"{server.url}/oauth/v2/token", timeout=10,
                         json={"grant_type": JWT_BEARER, "assertion": assertion, "scope": "openid"})
    oauth_error(as_json, 400, "invalid_request")
    twice = httpx.post(f"{server.url}/oauth/v2/token", timeout=10,
                       headers={"content-type": "application/x-www-form-urlencoded"},
                       content=f"grant_type={JWT_BEARER}&grant_type=client_credentials&scope=openid")
    oauth_error(twice, 400, "invalid_request")
    oversized = token_request(server, {"grant_type": JWT_BEARER, "assertion": "x" * 70_000, "scope": "openid"})
    oauth_error(oversized, 400, "invalid_request")
    assert httpx.get(f"{server.url}/oauth/v2/token", timeout=10).status_code == 405
    assert token_count(server, user.id) == 0


# ---- client credentials --------------------------------------------------------------------------


def test_client_credentials_authentication_methods(server: ServerProcess, tmp_path: Path) -> None:
    machine = add_machine(server)
    secret = add_secret(server, machine["id"])
    form = {"grant_type": "client_credentials", "scope": ZITADEL_SCOPES}

    by_basic = token_request(server, form, headers=basic(machine["username"], secret))
    assert by_basic.status_code == 200, by_basic.text
    assert by_basic.json()["token_type"] == "Bearer" and by_basic.json()["access_token"].startswith("tat_")
    by_id = token_request(server, form, headers=basic(machine["id"], secret))
    assert by_id.status_code == 200
    by_post = token_request(server, {**form, "client_id": machine["username"], "client_secret": secret})
    assert by_post.status_code == 200
    _, key_file = add_key_file(server, machine["id"], tmp_path)
    by_key = token_request(server, {**form, "client_assertion_type": CLIENT_ASSERTION,
                                    "client_assertion": assertion_from_file(server, key_file)})
    assert by_key.status_code == 200, by_key.text
    token = by_basic.json()["access_token"]
    assert user_call(server, "GetUserByID", {"userId": machine["id"]}, token).status_code == 200


def test_client_credentials_refusals(server: ServerProcess) -> None:
    machine = add_machine(server)
    secret = add_secret(server, machine["id"])
    form = {"grant_type": "client_credentials", "scope": "openid"}

    missing = token_request(server, form)
    oauth_error(missing, 401, "invalid_client")
    assert missing.headers["www-authenticate"].startswith("Basic")
    oauth_error(token_request(server, form, headers=basic(machine["username"], secret[:-1])), 401, "invalid_client")
    oauth_error(token_request(server, form, headers=basic("nobody-" + uuid.uuid4().hex, secret)), 401,
                "invalid_client")
    oauth_error(token_request(server, form, headers={"authorization": "Basic !!!"}), 401, "invalid_client")
    oauth_error(token_request(server, form, headers={"authorization": "Basic " + base64.b64encode(b"x").decode()}),
                401, "invalid_client")
    oauth_error(token_request(server, {**form, "client_id": machine["username"], "client_secret": "wrong"}), 401,
                "invalid_client")
    both = token_request(server, {**form, "client_id": machine["username"], "client_secret": secret},
                         headers=basic(machine["username"], secret))
    oauth_error(both, 400, "invalid_request")
    assert token_count(server, machine["id"]) == 0

    # A human has no client secret to give.
    human = user_call(server, "AddHumanUser", {
        "username": "h-" + uuid.uuid4().hex[:8], "profile": {"givenName": "A", "familyName": "B"},
        "email": {"email": f"h{uuid.uuid4().hex[:8]}@example.com", "isVerified": True}})
    refused = user_call(server, "AddSecret", {"userId": human.json()["userId"]})
    assert refused.status_code == 400 and refused.json()["code"] == "failed_precondition"


def test_basic_credentials_are_read_raw_or_url_encoded(server: ServerProcess) -> None:
    """The SDK sends id:secret as they are; RFC 6749 clients URL-encode them first. Both work."""
    username = f"svc+{uuid.uuid4().hex[:8]}"
    created = user_call(server, "CreateUser", {"username": username, "machine": {"name": "Plus"}})
    assert created.status_code == 200, created.text
    secret = add_secret(server, created.json()["id"])
    form = {"grant_type": "client_credentials", "scope": "openid"}
    assert token_request(server, form, headers=basic(username, secret)).status_code == 200
    encoded = username.replace("+", "%2B")
    assert token_request(server, form, headers=basic(encoded, secret)).status_code == 200


def test_removing_or_replacing_the_secret_stops_its_tokens(server: ServerProcess) -> None:
    machine = add_machine(server)
    first = add_secret(server, machine["id"])
    form = {"grant_type": "client_credentials", "scope": "openid"}
    token = token_request(server, form, headers=basic(machine["username"], first)).json()["access_token"]
    assert user_call(server, "GetUserByID", {"userId": machine["id"]}, token).status_code == 200

    second = add_secret(server, machine["id"])  # replaces the first
    assert second != first
    oauth_error(token_request(server, form, headers=basic(machine["username"], first)), 401, "invalid_client")
    assert user_call(server, "GetUserByID", {"userId": machine["id"]}, token).status_code == 401
    token = token_request(server, form, headers=basic(machine["username"], second)).json()["access_token"]

    assert user_call(server, "RemoveSecret", {"userId": machine["id"]}).status_code == 200
    oauth_error(token_request(server, form, headers=basic(machine["username"], second)), 401, "invalid_client")
    assert user_call(server, "GetUserByID", {"userId": machine["id"]}, token).status_code == 401
    got = user_call(server, "GetUserByID", {"userId": machine["id"]}).json()["user"]["machine"]
    assert not got.get("hasSecret")
    again = user_call(server, "RemoveSecret", {"userId": machine["id"]})
    assert again.status_code == 404


def test_locked_client_gets_no_token(server: ServerProcess) -> None:
    machine = add_machine(server)
    secret = add_secret(server, machine["id"])
    form = {"grant_type": "client_credentials", "scope": "openid"}
    assert user_call(server, "LockUser", {"userId": machine["id"]}).status_code == 200
    oauth_error(token_request(server, form, headers=basic(machine["username"], secret)), 401, "invalid_client")
    assert token_count(server, machine["id"]) == 0


# ---- signing key rotation --------------------------------------------------------------------------


def test_rotating_the_signing_key_keeps_old_tokens_valid(server: ServerProcess, tmp_path: Path) -> None:
    user = service_user(server, tmp_path, jwt_tokens=True)
    old = jwt_grant(server, assertion_from_file(server, user.key_file)).json()["access_token"]
    old_kid = _kid(old)
    before = {k["kid"] for k in httpx.get(f"{server.url}/oauth/v2/keys", timeout=10).json()["keys"]}
    assert old_kid in before

    rotated = tessera_cli(server, "keys", "rotate-signing", "--json")
    new_kid = json.loads(rotated)["kid"]
    keys = [k["kid"] for k in httpx.get(f"{server.url}/oauth/v2/keys", timeout=10).json()["keys"]]
    assert keys[0] == new_kid and old_kid in keys  # the old key stays published until its tokens expire

    assert user_call(server, "GetUserByID", {"userId": user.id}, old).status_code == 200
    time.sleep(0.01)
    new = jwt_grant(server, assertion_from_file(server, user.key_file)).json()["access_token"]
    assert _kid(new) == new_kid
    assert user_call(server, "GetUserByID", {"userId": user.id}, new).status_code == 200
    listing = tessera_cli(server, "keys", "signing", "--json")
    states = {k["kid"]: k["state"] for k in json.loads(listing)}
    assert states[new_kid] == "signing" and states[old_kid] == "retired"


def _kid(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


@pytest.mark.parametrize("path", ["/oauth/v2/introspect", "/oauth/v2/revoke", "/oauth/v2/token"])
def test_form_endpoints_answer_get_with_405(server: ServerProcess, path: str) -> None:
    response = httpx.get(f"{server.url}{path}", timeout=10, headers=bearer(server.admin_pat))
    assert response.status_code == 405 and response.headers["allow"] == "POST"
