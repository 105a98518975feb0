"""The official Python SDK signs in as a service user: key files (AddKey, CLI) and client credentials."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
import zitadel_client
from joserfc import jwt
from joserfc.jwk import KeySet
from zitadel_client.exceptions import ApiError, ZitadelError
from zitadel_client.models import (
    SessionServiceCheckPassword,
    SessionServiceChecks,
    SessionServiceCheckUser,
    SessionServiceCreateSessionRequest,
    SessionServiceGetSessionRequest,
    SessionServiceListSessionsRequest,
    UserServiceAddHumanUserRequest,
    UserServiceGetUserByIDRequest,
    UserServiceListUsersRequest,
    UserServicePassword,
    UserServiceSetHumanEmail,
    UserServiceSetHumanProfile,
)

from ..conftest import ServerProcess
from ..helpers import PASSWORD, tessera_cli
from .support import (
    add_key_file,
    add_secret,
    admin_id,
    assertion_from_file,
    bearer,
    jwt_grant,
    service_user,
    token_count,
    user_call,
)


def exercise_apis(client: zitadel_client.Zitadel, user_id: str) -> None:
    """The User and Session services through ``client``: several calls on one token."""
    user = client.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id))
    assert user is not None and user.user is not None and user.user.user_id == user_id
    listed = client.users.list_users(UserServiceListUsersRequest())
    assert listed is not None and any(u.user_id == user_id for u in listed.result or [])

    name = f"human-{uuid.uuid4().hex[:12]}"  # unique: id(client) repeats once an earlier client is freed
    added = client.users.add_human_user(UserServiceAddHumanUserRequest(
        username=name, profile=UserServiceSetHumanProfile(given_name="Ada", family_name="Lovelace"),
        email=UserServiceSetHumanEmail(email=f"{name}@example.com", is_verified=True),
        password=UserServicePassword(password=PASSWORD, change_required=False)))
    assert added is not None and added.user_id
    session = client.sessions.create_session(SessionServiceCreateSessionRequest(checks=SessionServiceChecks(
        user=SessionServiceCheckUser(login_name=name), password=SessionServiceCheckPassword(password=PASSWORD))))
    assert session is not None and session.session_token
    got = client.sessions.get_session(SessionServiceGetSessionRequest(session_id=session.session_id))
    assert got is not None and got.session is not None and got.session.factors.password is not None
    sessions = client.sessions.list_sessions(SessionServiceListSessionsRequest())
    assert sessions is not None and any(s.id == session.session_id for s in sessions.sessions or [])


def test_private_key_file_from_add_key(server: ServerProcess, tmp_path: Path) -> None:
    admin = admin_id(server)
    path, key_file = add_key_file(server, admin, tmp_path)
    assert set(key_file) >= {"type", "keyId", "key", "userId"} and key_file["type"] == "serviceaccount"
    assert key_file["userId"] == admin and key_file["key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    before = token_count(server, admin)

    client = zitadel_client.Zitadel.with_private_key(server.url, str(path))
    exercise_apis(client, admin)

    # Six calls, one token: the SDK caches it for its lifetime (12 h by default).
    assert token_count(server, admin) == before + 1


def test_private_key_file_from_the_cli(server: ServerProcess, tmp_path: Path) -> None:
    admin = admin_id(server)
    output = tessera_cli(server, "keys", "create", "--user", admin)
    key_file = json.loads(output)
    assert key_file["userId"] == admin and key_file["type"] == "serviceaccount"
    path = tmp_path / "key.json"
    path.write_text(output)
    listed = user_call(server, "ListKeys", {"filters": [{"keyIdFilter": {"id": key_file["keyId"]}}]}).json()
    assert [k["id"] for k in listed["result"]] == [key_file["keyId"]]
    before = token_count(server, admin)

    client = zitadel_client.Zitadel.with_private_key(server.url, str(path))
    exercise_apis(client, admin)
    assert token_count(server, admin) == before + 1


def test_client_credentials(server: ServerProcess) -> None:
    admin = admin_id(server)
    username = user_call(server, "GetUserByID", {"userId": admin}).json()["user"]["username"]
    secret = add_secret(server, admin)
    assert user_call(server, "GetUserByID", {"userId": admin}).json()["user"]["machine"]["hasSecret"] is True
    before = token_count(server, admin)

    client = zitadel_client.Zitadel.with_client_credentials(server.url, username, secret)
    exercise_apis(client, admin)
    assert token_count(server, admin) == before + 1

    wrong = zitadel_client.Zitadel.with_client_credentials(server.url, username, secret + "x")
    with pytest.raises(ZitadelError, match="invalid_client"):
        wrong.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=admin))
    assert token_count(server, admin) == before + 1


def test_service_user_with_its_own_permissions(server: ServerProcess, tmp_path: Path) -> None:
    """A service user without roles may read itself, and nothing that needs a permission."""
    user = service_user(server, tmp_path)
    client = zitadel_client.Zitadel.with_private_key(server.url, str(user.key_path))
    got = client.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user.id))
    assert got is not None and got.user is not None and got.user.username == user.username
    with pytest.raises(ApiError) as denied:
        client.users.add_human_user(UserServiceAddHumanUserRequest(
            username=f"denied-{user.id}", profile=UserServiceSetHumanProfile(given_name="A", family_name="B"),
            email=UserServiceSetHumanEmail(email=f"denied-{user.id}@example.com", is_verified=True)))
    assert denied.value.code == 403
    sessions = client.sessions.list_sessions(SessionServiceListSessionsRequest())
    assert sessions is not None and not sessions.sessions  # it sees no one else's sessions


def test_jwt_access_tokens_verify_with_the_published_keys(server: ServerProcess, tmp_path: Path) -> None:
    user = service_user(server, tmp_path, jwt_tokens=True)
    response = jwt_grant(server, assertion_from_file(server, user.key_file))
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert token.startswith("eyJ") and token.count(".") == 2

    jwks = httpx.get(f"{server.url}/oauth/v2/keys", timeout=10).json()
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert decoded.header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert decoded.claims["iss"] == server.url and decoded.claims["sub"] == user.id
    assert decoded.claims["exp"] - decoded.claims["iat"] == 12 * 3600

    # The JWT is a bearer token on Connect, REST and /v2/users/me, and the SDK takes it as a token.
    assert user_call(server, "GetUserByID", {"userId": user.id}, token).status_code == 200
    assert httpx.get(f"{server.url}/v2/users/{user.id}", headers=bearer(token), timeout=10).status_code == 200
    me = httpx.get(f"{server.url}/v2/users/me", headers=bearer(token), timeout=10)
    assert me.json()["user"]["userId"] == user.id
    sdk = zitadel_client.Zitadel.with_access_token(server.url, token)
    got = sdk.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user.id))
    assert got is not None and got.user is not None and got.user.user_id == user.id

    # The SDK with the key file gets a JWT too and uses it.
    client = zitadel_client.Zitadel.with_private_key(server.url, str(user.key_path))
    got = client.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user.id))
    assert got is not None and got.user is not None

    # A forged JWT (the payload changed after signing) is refused.
    header, payload, signature = token.split(".")
    forged = ".".join([header, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), signature])
    assert user_call(server, "GetUserByID", {"userId": user.id}, forged).status_code == 401
