"""Helpers for the OAuth tests: service users with keys and secrets, assertions, raw token calls."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import create_engine, func, select

from tessera.store.schema import oauth_access_tokens

from ..conftest import ServerProcess
from ..helpers import connect

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ZITADEL_SCOPES = "openid urn:zitadel:iam:org:project:id:zitadel:aud"


def user_call(server: ServerProcess, method: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    return connect(server, "UserService", method, body, server.admin_pat if token is None else token)


def admin_id(server: ServerProcess) -> str:
    me = httpx.get(f"{server.url}/v2/users/me", headers={"authorization": f"Bearer {server.admin_pat}"}, timeout=10)
    assert me.status_code == 200, me.text
    return str(me.json()["user"]["userId"])


def add_machine(server: ServerProcess, *, jwt_tokens: bool = False) -> dict[str, str]:
    """A new machine user in the default organization: its id and username."""
    username = f"svc-{uuid.uuid4().hex[:10]}"
    machine: dict[str, Any] = {"name": "Robot", "description": "OAuth test"}
    if jwt_tokens:
        machine["accessTokenType"] = "ACCESS_TOKEN_TYPE_JWT"
    response = user_call(server, "CreateUser", {"username": username, "machine": machine})
    assert response.status_code == 200, response.text
    return {"id": response.json()["id"], "username": username}


def add_key_file(server: ServerProcess, user_id: str, directory: Path, **extra: Any) -> tuple[Path, dict[str, Any]]:
    """AddKey without a public key: the key file (decoded from keyContent) written to ``directory``."""
    response = user_call(server, "AddKey", {"userId": user_id, **extra})
    assert response.status_code == 200, response.text
    content = base64.b64decode(response.json()["keyContent"])
    path = directory / f"key-{response.json()['keyId']}.json"
    path.write_bytes(content)
    return path, json.loads(content)


def add_secret(server: ServerProcess, user_id: str) -> str:
    response = user_call(server, "AddSecret", {"userId": user_id})
    assert response.status_code == 200, response.text
    return str(response.json()["clientSecret"])


def sign(key: RSAKey | ECKey | str, claims: dict[str, Any], *, kid: str | None, alg: str = "RS256") -> str:
    private = RSAKey.import_key(key) if isinstance(key, str) else key
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    return jwt.encode(header, claims, private, algorithms=[alg])


def claims_for(server: ServerProcess, user_id: str, **override: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": user_id, "sub": user_id, "aud": server.url, "iat": now, "exp": now + 3600}
    claims.update(override)
    return {k: v for k, v in claims.items() if v is not None}


def assertion_from_file(server: ServerProcess, key_file: dict[str, Any], **override: Any) -> str:
    return sign(key_file["key"], claims_for(server, key_file["userId"], **override), kid=key_file["keyId"])


def token_request(server: ServerProcess, form: dict[str, str], **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/oauth/v2/token", data=form, timeout=30, **kwargs)


def jwt_grant(server: ServerProcess, assertion: str, scope: str = ZITADEL_SCOPES) -> httpx.Response:
    return token_request(server, {"grant_type": JWT_BEARER, "assertion": assertion, "scope": scope,
                                  "client_id": "None"})


def token_count(server: ServerProcess, user_id: str) -> int:
    """How many access tokens the server has issued to ``user_id`` (read from its database)."""
    url = server.database_url or f"sqlite:///{server.data_dir / 'tessera.db'}"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            count: int = conn.execute(select(func.count()).select_from(oauth_access_tokens)
                                      .where(oauth_access_tokens.c.user_id == user_id)).scalar_one()
            return count
    finally:
        engine.dispose()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class ServiceUser:
    id: str
    username: str
    key_path: Path
    key_file: dict[str, Any]


def service_user(server: ServerProcess, directory: Path, *, jwt_tokens: bool = False) -> ServiceUser:
    machine = add_machine(server, jwt_tokens=jwt_tokens)
    path, key_file = add_key_file(server, machine["id"], directory)
    return ServiceUser(id=machine["id"], username=machine["username"], key_path=path, key_file=key_file)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
