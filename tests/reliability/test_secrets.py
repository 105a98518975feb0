"""Secrets stay secret: never in logs or events, and stored only as hashes (or sealed).

One full workflow runs against a fresh server at log level ``debug``: users with passwords,
password changes, TOTP registration and step-up, sessions and rotations, wrong passwords, a
machine user with a PAT, a client secret, a key and OAuth access tokens, revocations, and a few
requests that put secrets where they do not belong. Every secret it handled (and every hash the
server stored) is then searched for in the server's log, in the events table, and, in plain
text, anywhere in the database.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from ..conftest import ServerProcess, running_server
from ..helpers import connect, session_call
from .support import Db, db_url


@dataclass
class Workflow:
    server: ServerProcess
    secrets: dict[str, str] = field(default_factory=dict)  # what -> the secret text
    session_tokens: list[str] = field(default_factory=list)
    user_id: str = ""
    machine_id: str = ""
    pat: str = ""
    client_secret: str = ""
    totp_secret: str = ""

    def keep(self, what: str, value: str) -> str:
        assert value, what
        self.secrets[f"{what} #{len(self.secrets)}"] = value
        return value


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def run_workflow(server: ServerProcess) -> Workflow:
    flow = Workflow(server)
    admin = server.admin_pat
    flow.keep("admin PAT", admin)
    user = lambda method, body, token=admin: connect(server, "UserService", method, body, token)  # noqa: E731

    name = f"s{uuid.uuid4().hex[:10]}"
    first_password = flow.keep("password", "First-Secret-pw1")
    flow.user_id = _ok(user("AddHumanUser", {
        "username": name, "profile": {"givenName": "Sec", "familyName": "Ret"},
        "email": {"email": f"{name}@example.com", "isVerified": True},
        "password": {"password": first_password, "changeRequired": False}}))["userId"]
    second_password = flow.keep("password", "Second-Secret-pw2")
    _ok(user("SetPassword", {"userId": flow.user_id, "newPassword": {"password": second_password},
                             "currentPassword": first_password}))

    flow.totp_secret = flow.keep("TOTP secret", _ok(user("RegisterTOTP", {"userId": flow.user_id}))["secret"])
    totp = pyotp.TOTP(flow.totp_secret)
    _ok(user("VerifyTOTPRegistration", {"userId": flow.user_id,
                                        "code": flow.keep("TOTP code", totp.at(time.time() - 30))}))

    for wrong in ("Wrong-Secret-pw3", "Wrong-Secret-pw4"):
        flow.keep("wrong password", wrong)
        answer = session_call(server, "CreateSession", {"checks": {"user": {"loginName": name},
                                                                   "password": {"password": wrong}}})
        assert answer.status_code == 400 and wrong not in answer.text
    # A password in the wrong shape, and a secret in an unknown field, must not be echoed either.
    misplaced = flow.keep("misplaced password", "Misplaced-Secret-pw5")
    answer = session_call(server, "CreateSession", {"checks": {"password": misplaced}})
    assert answer.status_code == 400 and misplaced not in answer.text
    session_call(server, "CreateSession", {"unknownSecretField": flow.keep("unknown field", "Unknown-Secret-6")})

    created = _ok(session_call(server, "CreateSession", {
        "checks": {"user": {"loginName": name}, "password": {"password": second_password},
                   "totp": {"code": flow.keep("TOTP code", totp.now())}},
        "metadata": {"note": base64.b64encode(b"not a secret").decode()}}))
    session_id = created["sessionId"]
    flow.session_tokens.append(flow.keep("session token", created["sessionToken"]))
    for index in range(3):
        rotated = _ok(session_call(server, "SetSession", {"sessionId": session_id,
                                                          "metadata": {"n": base64.b64encode(b"%d" % index).decode()}}))
        flow.session_tokens.append(flow.keep("session token", rotated["sessionToken"]))
    latest = flow.session_tokens[-1]
    assert httpx.get(f"{server.url}/v2/users/me", headers={"authorization": f"Bearer {latest}"},
                     timeout=30).status_code == 200
    assert httpx.get(f"{server.url}/v2/users/me", headers={"authorization": f"Bearer {flow.session_tokens[0]}"},
                     timeout=30).status_code == 401
    _ok(session_call(server, "GetSession", {"sessionId": session_id, "sessionToken": latest}))
    other = _ok(session_call(server, "CreateSession", {"checks": {"user": {"userId": flow.user_id},
                                                                  "password": {"password": second_password}}}))
    flow.keep("session token", other["sessionToken"])
    _ok(session_call(server, "DeleteSession", {"sessionId": other["sessionId"], "sessionToken": other["sessionToken"]}))

    flow.machine_id = _ok(user("CreateUser", {"username": f"m{uuid.uuid4().hex[:10]}",
                                              "machine": {"name": "Secretive"}}))["id"]
    added = _ok(user("AddPersonalAccessToken", {"userId": flow.machine_id}))
    flow.pat = flow.keep("PAT", added["token"])
    _ok(user("ListUsers", {}, flow.pat))
    revoked = _ok(user("AddPersonalAccessToken", {"userId": flow.machine_id}))
    flow.keep("PAT", revoked["token"])
    _ok(user("RemovePersonalAccessToken", {"userId": flow.machine_id, "tokenId": revoked["tokenId"]}))
    assert user("ListUsers", {}, revoked["token"]).status_code == 401

    flow.client_secret = flow.keep("client secret",
                                   _ok(user("AddSecret", {"userId": flow.machine_id}))["clientSecret"])
    key_file = json.loads(base64.b64decode(_ok(user("AddKey", {"userId": flow.machine_id}))["keyContent"]))
    private_key = key_file["key"]
    flow.keep("private key", "".join(private_key.strip().splitlines()[1:-1])[:64])
    token = httpx.post(f"{server.url}/oauth/v2/token", timeout=30, data={
        "grant_type": "client_credentials", "client_id": key_file["userId"],
        "client_secret": flow.client_secret, "scope": "openid"})
    assert token.status_code == 200, token.text
    flow.keep("access token", token.json()["access_token"])
    wrong = httpx.post(f"{server.url}/oauth/v2/token", timeout=30, data={
        "grant_type": "client_credentials", "client_id": key_file["userId"],
        "client_secret": flow.keep("wrong client secret", "Wrong-Client-Secret-7"), "scope": "openid"})
    assert wrong.status_code in (400, 401) and "Wrong-Client-Secret-7" not in wrong.text
    return flow


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def workflow(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workflow]:
    tmp: Path = tmp_path_factory.mktemp(f"secrets-{request.param}")
    with running_server(tmp, request.param, extra_env={"TESSERA_LOG_LEVEL": "debug"}) as server:
        yield run_workflow(server)


def _stored_hashes(db: Db) -> dict[str, str]:
    """Every hash and sealed secret the server stored, in the textual forms a leak could take."""
    found: dict[str, str] = {}
    for (digest,) in db.rows("SELECT token_hash FROM sessions UNION ALL SELECT token_hash FROM personal_access_tokens"):
        raw = bytes(digest)
        found[f"token hash {len(found)}"] = raw.hex()
        found[f"token hash b64 {len(found)}"] = base64.b64encode(raw).decode().rstrip("=")
    for password_hash, totp_secret in db.rows("SELECT password_hash, totp_secret FROM users"):
        if password_hash:
            found[f"password hash {len(found)}"] = str(password_hash)
        if totp_secret:
            found[f"sealed TOTP secret {len(found)}"] = str(totp_secret)
    return found


def test_no_secret_or_hash_in_logs_or_events(workflow: Workflow) -> None:
    db = Db(db_url(workflow.server))
    try:
        hashes = _stored_hashes(db)
        events = db.rows("SELECT type, payload, creator, aggregate_id FROM events")
    finally:
        db.close()
    assert hashes and events
    log = workflow.server.log()
    assert log, "the server wrote no log at all"
    event_text = "\n".join(" ".join(str(c) for c in row if c is not None) for row in events)
    for what, secret in {**workflow.secrets, **hashes}.items():
        assert secret not in log, f"{what} appears in the server log"
        assert secret not in event_text, f"{what} appears in the events table"
    print(f"\nsecrets: {len(workflow.secrets)} secrets and {len(hashes)} stored hashes checked against "
          f"{len(log)} bytes of log and {len(events)} events")


def _every_stored_value(db: Db) -> Iterator[tuple[str, str]]:
    """(table.column, value as text) for every non-null value in every table."""
    if db.engine.dialect.name == "sqlite":
        tables = [r[0] for r in db.rows("SELECT name FROM sqlite_master WHERE type = 'table'")]
    else:
        tables = [r[0] for r in db.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    for table in tables:
        with db.engine.connect() as conn:
            from sqlalchemy import text

            result = conn.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    if isinstance(value, (bytes, memoryview)):
                        value = bytes(value).decode("latin-1")
                    yield f"{table}.{column}", str(value)


def test_tokens_and_secrets_are_stored_only_as_hashes(workflow: Workflow) -> None:
    db = Db(db_url(workflow.server))
    try:
        for where, value in _every_stored_value(db):
            for what, secret in workflow.secrets.items():
                assert secret not in value, f"{what} is stored in plain text in {where}"

        session_hashes = [bytes(r[0]) for r in db.rows("SELECT token_hash FROM sessions")]
        assert session_hashes and all(len(h) == 32 for h in session_hashes)
        latest = hashlib.sha256(workflow.session_tokens[-1].encode()).digest()
        assert latest in session_hashes  # a SHA-256 of the token, nothing reversible
        pat_hashes = [bytes(r[0]) for r in db.rows(
            "SELECT token_hash FROM personal_access_tokens WHERE user_id = :u", u=workflow.machine_id)]
        assert pat_hashes == [hashlib.sha256(workflow.pat.encode()).digest()]

        password_hash, totp_secret = db.rows("SELECT password_hash, totp_secret FROM users WHERE id = :u",
                                             u=workflow.user_id)[0]
        assert str(password_hash).startswith("$argon2id$"), password_hash
        assert str(totp_secret).startswith("v1:") and workflow.totp_secret not in str(totp_secret)
        assert workflow.totp_secret.lower() not in str(totp_secret).lower()

        if workflow.client_secret:
            (secret_hash,) = db.rows("SELECT secret_hash FROM users WHERE id = :u", u=workflow.machine_id)[0]
            assert len(bytes(secret_hash)) == 32
            keys = [str(r[0]) for r in db.rows("SELECT public_key FROM machine_keys WHERE user_id = :u",
                                               u=workflow.machine_id)]
            assert keys and all("PUBLIC KEY" in k and "PRIVATE" not in k for k in keys)
            access = db.rows("SELECT token_hash, format FROM oauth_access_tokens WHERE user_id = :u",
                             u=workflow.machine_id)
            assert access and all(f != "opaque" or len(bytes(h)) == 32 for h, f in access)
            for (sealed,) in db.rows("SELECT private_key FROM signing_keys"):
                assert "PRIVATE KEY" not in str(sealed), "an instance signing key is stored unsealed"
    finally:
        db.close()
