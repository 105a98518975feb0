"""Every kind of caller the authorization matrix and the attack tests use, as bearer tokens.

The users behind the tokens that must *not* work (rotated, expired, user-check-only) hold
IAM_OWNER, so that accepting one of them by mistake would show as a success, not as a denial.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from ..conftest import ServerProcess
from ..helpers import PASSWORD, add_human, connect, session_call, tessera_cli

UNAUTHENTICATED_KINDS = ("no_token", "bad_token", "rotated_session_token", "expired_session_token",
                         "user_check_only_session")
AUTHENTICATED_KINDS = ("plain_user", "login_client", "user_manager", "instance_owner", "machine_jwt")
ALL_KINDS = UNAUTHENTICATED_KINDS + AUTHENTICATED_KINDS


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def grant(server: ServerProcess, user_id: str, role: str) -> None:
    tessera_cli(server, "users", "grant", user_id, role)


def machine(server: ServerProcess, role: str | None = None) -> str:
    created = ok(connect(server, "UserService", "CreateUser",
                         {"username": f"m{uuid.uuid4().hex[:10]}", "machine": {"name": "Caller"}}, server.admin_pat))
    if role is not None:
        grant(server, created["id"], role)
    return str(created["id"])


def pat_of(server: ServerProcess, user_id: str) -> str:
    return str(ok(connect(server, "UserService", "AddPersonalAccessToken", {"userId": user_id},
                          server.admin_pat))["token"])


def password_session(server: ServerProcess, user_id: str, **extra: Any) -> dict[str, Any]:
    checks = {"user": {"userId": user_id}, "password": {"password": PASSWORD}}
    return ok(session_call(server, "CreateSession", {"checks": checks, **extra}))


def jwt_access_token(server: ServerProcess, user_id: str) -> str:
    """AddKey, then the key file's private key signs an RFC 7523 assertion for /oauth/v2/token."""
    added = ok(connect(server, "UserService", "AddKey", {"userId": user_id}, server.admin_pat))
    import base64

    key_file = json.loads(base64.b64decode(added["keyContent"]))
    key = RSAKey.import_key(key_file["key"])
    now = int(time.time())
    assertion = jwt.encode({"alg": "RS256", "kid": key_file["keyId"]},
                           {"iss": key_file["userId"], "sub": key_file["userId"], "aud": server.url,
                            "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}, key)
    answer = httpx.post(f"{server.url}/oauth/v2/token", timeout=30, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion,
        "scope": "openid urn:zitadel:iam:org:project:id:zitadel:aud"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


@dataclass
class Callers:
    """A token per caller kind (None for "no token"), and who is behind each."""

    tokens: dict[str, str | None]
    user_ids: dict[str, str]

    def token(self, kind: str) -> str | None:
        return self.tokens[kind]


def make_callers(server: ServerProcess) -> Callers:
    tokens: dict[str, str | None] = {"no_token": None, "bad_token": "tpat_" + "B" * 43,
                                     "instance_owner": server.admin_pat}
    user_ids: dict[str, str] = {}

    rotated_user = add_human(server)["id"]
    grant(server, rotated_user, "IAM_OWNER")
    first = password_session(server, rotated_user)
    ok(session_call(server, "SetSession", {"sessionId": first["sessionId"], "metadata": {"k": "dg=="}}))
    tokens["rotated_session_token"] = first["sessionToken"]

    expired_user = add_human(server)["id"]
    grant(server, expired_user, "IAM_OWNER")
    expiring = password_session(server, expired_user, lifetime="1s")
    tokens["expired_session_token"] = expiring["sessionToken"]

    check_only_user = add_human(server)["id"]
    grant(server, check_only_user, "IAM_OWNER")
    tokens["user_check_only_session"] = ok(session_call(server, "CreateSession", {
        "checks": {"user": {"userId": check_only_user}}}))["sessionToken"]

    plain = add_human(server)["id"]
    tokens["plain_user"] = password_session(server, plain)["sessionToken"]
    user_ids["plain_user"] = plain

    for kind, role in (("login_client", "IAM_LOGIN_CLIENT"), ("user_manager", "IAM_USER_MANAGER")):
        user_ids[kind] = machine(server, role)
        tokens[kind] = pat_of(server, user_ids[kind])

    user_ids["machine_jwt"] = machine(server, "IAM_LOGIN_CLIENT")
    tokens["machine_jwt"] = jwt_access_token(server, user_ids["machine_jwt"])

    time.sleep(max(0.0, 1.2 - (time.time() - _created_at(expiring))))  # let the 1 s lifetime pass
    return Callers(tokens, user_ids)


def _created_at(created: dict[str, Any]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(created["details"]["changeDate"].replace("Z", "+00:00")).timestamp()
