"""The authorization matrix: every RPC by every kind of caller, with the outcome each must get.

Each row names an RPC, builds a request against fresh targets (created with the admin PAT, never
the caller's own user), and gives the outcome for each authenticated caller kind. Callers whose
token must not work (none, bad, rotated, expired, user-check-only) are unauthenticated on every
RPC that Tessera serves. ``test_every_rpc_has_a_row`` enumerates the RPCs from the generated
service descriptors, so a new RPC fails the suite until it gets its row here.

Columns: P plain user (session token with password, no roles), L login client (machine user
with IAM_LOGIN_CLIENT, PAT), M user manager (IAM_USER_MANAGER, PAT), O instance owner (admin
PAT); the machine user that signs a JWT assertion (RFC 7523) holds IAM_LOGIN_CLIENT and must get
exactly column L.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest

from ..conftest import ServerProcess
from ..helpers import add_human, session_call
from .callers import ALL_KINDS, UNAUTHENTICATED_KINDS, Callers, make_callers, ok
from .support import Db, all_rpcs, connect_code, db_url, write_fingerprint

OK, DENIED, UNIMPLEMENTED = "ok", "permission_denied", "unimplemented"
UNAUTHENTICATED = "unauthenticated"


@dataclass(frozen=True)
class Row:
    build: Callable[[Fixture], dict[str, Any]]
    plain: str
    login: str
    manager: str
    owner: str

    def expected(self, kind: str) -> str:
        if self.owner == UNIMPLEMENTED:
            return UNIMPLEMENTED  # not served: the generated stub answers before authentication
        if kind in UNAUTHENTICATED_KINDS:
            return UNAUTHENTICATED
        return {"plain_user": self.plain, "login_client": self.login, "user_manager": self.manager,
                "instance_owner": self.owner, "machine_jwt": self.login}[kind]


@dataclass
class Fixture:
    server: ServerProcess
    callers: Callers
    db: Db
    client: httpx.Client

    def user(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        return ok(self.client.post(f"{self.server.url}/zitadel.user.v2.UserService/{method}", json=body,
                                   headers={"authorization": f"Bearer {self.server.admin_pat}"}))

    def human(self) -> str:
        return add_human(self.server)["id"]

    def machine(self) -> str:
        return str(self.user("CreateUser", {"username": f"t{uuid.uuid4().hex[:10]}",
                                            "machine": {"name": "Target"}})["id"])

    def session(self) -> str:
        created = ok(session_call(self.server, "CreateSession", {"checks": {"user": {"userId": self.human()}}}))
        return str(created["sessionId"])

    def totp_registered(self) -> tuple[str, str]:
        user_id = self.human()
        secret = self.user("RegisterTOTP", {"userId": user_id})["secret"]
        return user_id, secret


def _human_body(fx: Fixture) -> dict[str, Any]:
    name = f"h{uuid.uuid4().hex[:10]}"
    return {"username": name, "profile": {"givenName": "A", "familyName": "B"},
            "email": {"email": f"{name}@example.com", "isVerified": True}}


def _deactivated(fx: Fixture) -> dict[str, Any]:
    user_id = fx.human()
    fx.user("DeactivateUser", {"userId": user_id})
    return {"userId": user_id}


def _locked(fx: Fixture) -> dict[str, Any]:
    user_id = fx.human()
    fx.user("LockUser", {"userId": user_id})
    return {"userId": user_id}


def _verify_totp(fx: Fixture) -> dict[str, Any]:
    user_id, secret = fx.totp_registered()
    return {"userId": user_id, "code": pyotp.TOTP(secret).now()}


def _totp_ready(fx: Fixture) -> dict[str, Any]:
    user_id, secret = fx.totp_registered()
    fx.user("VerifyTOTPRegistration", {"userId": user_id, "code": pyotp.TOTP(secret).now()})
    return {"userId": user_id}


def _machine_with_secret(fx: Fixture) -> dict[str, Any]:
    user_id = fx.machine()
    fx.user("AddSecret", {"userId": user_id})
    return {"userId": user_id}


def _machine_with_key(fx: Fixture) -> dict[str, Any]:
    user_id = fx.machine()
    public = base64.b64encode(_PUBLIC_KEY_PEM).decode()
    key_id = fx.user("AddKey", {"userId": user_id, "publicKey": public})["keyId"]
    return {"userId": user_id, "keyId": key_id}


def _machine_with_pat(fx: Fixture) -> dict[str, Any]:
    user_id = fx.machine()
    token_id = fx.user("AddPersonalAccessToken", {"userId": user_id})["tokenId"]
    return {"userId": user_id, "tokenId": token_id}


def _public_key() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


_PUBLIC_KEY_PEM = _public_key()

#                                                      plain   login   manager owner
ROWS: dict[str, Row] = {
    # ---- UserService ---------------------------------------------------------------------------------
    "UserService.CreateUser": Row(lambda fx: {"username": f"n{uuid.uuid4().hex[:10]}",
                                              "machine": {"name": "New"}}, DENIED, DENIED, OK, OK),
    "UserService.AddHumanUser": Row(_human_body, DENIED, DENIED, OK, OK),
    "UserService.GetUserByID": Row(lambda fx: {"userId": fx.human()}, DENIED, OK, OK, OK),
    "UserService.ListUsers": Row(lambda fx: {}, OK, OK, OK, OK),  # filtered to what the caller may read
    "UserService.UpdateHumanUser": Row(lambda fx: {"userId": fx.human()}, *[UNIMPLEMENTED] * 4),
    "UserService.DeactivateUser": Row(lambda fx: {"userId": fx.human()}, DENIED, DENIED, OK, OK),
    "UserService.ReactivateUser": Row(_deactivated, DENIED, DENIED, OK, OK),
    "UserService.LockUser": Row(lambda fx: {"userId": fx.human()}, DENIED, DENIED, OK, OK),
    "UserService.UnlockUser": Row(_locked, DENIED, DENIED, OK, OK),
    "UserService.DeleteUser": Row(lambda fx: {"userId": fx.human()}, DENIED, DENIED, OK, OK),
    "UserService.RegisterTOTP": Row(lambda fx: {"userId": fx.human()}, DENIED, DENIED, OK, OK),
    "UserService.VerifyTOTPRegistration": Row(_verify_totp, DENIED, DENIED, OK, OK),
    "UserService.RemoveTOTP": Row(_totp_ready, DENIED, DENIED, OK, OK),
    "UserService.SetPassword": Row(lambda fx: {"userId": fx.human(), "newPassword": {
        "password": "Other-Passw0rd!", "changeRequired": False}}, DENIED, DENIED, OK, OK),
    "UserService.AddSecret": Row(lambda fx: {"userId": fx.machine()}, DENIED, DENIED, OK, OK),
    "UserService.RemoveSecret": Row(_machine_with_secret, DENIED, DENIED, OK, OK),
    "UserService.AddKey": Row(lambda fx: {"userId": fx.machine(), "publicKey": base64.b64encode(
        _PUBLIC_KEY_PEM).decode()}, DENIED, DENIED, OK, OK),
    "UserService.RemoveKey": Row(_machine_with_key, DENIED, DENIED, OK, OK),
    "UserService.ListKeys": Row(lambda fx: {}, OK, OK, OK, OK),
    "UserService.AddPersonalAccessToken": Row(lambda fx: {"userId": fx.machine()}, DENIED, DENIED, OK, OK),
    "UserService.RemovePersonalAccessToken": Row(_machine_with_pat, DENIED, DENIED, OK, OK),
    "UserService.ListPersonalAccessTokens": Row(lambda fx: {}, OK, OK, OK, OK),
    # ---- OrganizationService -------------------------------------------------------------------------
    "OrganizationService.AddOrganization": Row(lambda fx: {"name": f"org-{uuid.uuid4().hex[:10]}"},
                                               DENIED, DENIED, DENIED, OK),
    "OrganizationService.ListOrganizations": Row(lambda fx: {}, OK, OK, OK, OK),
    # ---- SettingsService -----------------------------------------------------------------------------
    "SettingsService.GetGeneralSettings": Row(lambda fx: {}, DENIED, OK, OK, OK),
    # ---- SessionService ------------------------------------------------------------------------------
    "SessionService.CreateSession": Row(lambda fx: {}, DENIED, OK, DENIED, OK),
    "SessionService.SetSession": Row(lambda fx: {"sessionId": fx.session(), "metadata": {"k": "dg=="}},
                                     DENIED, OK, DENIED, OK),
    "SessionService.GetSession": Row(lambda fx: {"sessionId": fx.session()}, DENIED, OK, OK, OK),
    "SessionService.ListSessions": Row(lambda fx: {}, OK, OK, OK, OK),  # filtered to the caller's own
    "SessionService.DeleteSession": Row(lambda fx: {"sessionId": fx.session()}, DENIED, OK, OK, OK),
}


def test_every_rpc_has_a_row() -> None:
    served = {str(rpc) for rpc in all_rpcs()}
    assert served - set(ROWS) == set(), "RPCs without a row in the authorization matrix"
    assert set(ROWS) - served == set(), "rows for RPCs that no longer exist"


@pytest.fixture(scope="module")
def fixture(server: ServerProcess) -> Iterator[Fixture]:
    db = Db(db_url(server))
    with httpx.Client(timeout=30) as client:
        yield Fixture(server, make_callers(server), db, client)
    db.close()


def _call(fx: Fixture, rpc_name: str, body: dict[str, Any], token: str | None) -> httpx.Response:
    rpc = next(r for r in all_rpcs() if str(r) == rpc_name)
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return fx.client.post(fx.server.url + rpc.path, json=body, headers=headers)


@pytest.mark.parametrize("rpc_name", sorted(ROWS))
def test_matrix(fixture: Fixture, rpc_name: str) -> None:
    """One RPC against every caller kind; all mismatches are reported together.

    A request that must be refused leaves its target as it was, so the next caller reuses it;
    after a success the target is used up and a fresh one is built.
    """
    row = ROWS[rpc_name]
    mismatches = []
    body: dict[str, Any] | None = None
    for kind in ALL_KINDS:
        if kind not in fixture.callers.tokens:
            continue  # no OAuth token endpoint on this server: no machine-JWT caller (see callers.py)
        body = body if body is not None else row.build(fixture)
        before = write_fingerprint(fixture.db)
        response = _call(fixture, rpc_name, body, fixture.callers.token(kind))
        got = "ok" if response.status_code == 200 else connect_code(response)
        expected = row.expected(kind)
        if got != expected:
            mismatches.append(f"{kind}: expected {expected}, got {response.status_code} {response.text[:200]}")
        if got == OK:
            body = None
        elif write_fingerprint(fixture.db) != before:
            mismatches.append(f"{kind}: refused ({got}) but wrote something")
    assert not mismatches, f"{rpc_name}:\n" + "\n".join(mismatches)


def test_the_machine_jwt_caller_exists(fixture: Fixture) -> None:
    assert str(fixture.callers.token("machine_jwt")).startswith(("tat_", "ey"))
