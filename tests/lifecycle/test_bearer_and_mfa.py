"""Session tokens as OAuth2 bearer tokens, /users/me, and the forced-MFA login policy."""

from __future__ import annotations

import time

import httpx
import pyotp
import pytest

from ..conftest import ServerProcess
from ..helpers import add_human, connect, error_id, session_call, sign_in, tessera_cli


def me(server: ServerProcess, token: str, path: str = "/v2/users/me") -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers={"authorization": f"Bearer {token}"})


def test_session_token_is_a_bearer_for_its_user(server: ServerProcess) -> None:
    user = add_human(server)
    session = sign_in(server, user["name"])
    for path in ("/v2/users/me", "/auth/v1/users/me"):
        answer = me(server, session["sessionToken"], path)
        assert answer.status_code == 200, answer.text
        assert answer.json()["user"]["userId"] == user["id"]
        assert answer.json()["user"]["human"]["profile"]["givenName"] == "Test"


def test_pat_works_on_users_me(server: ServerProcess) -> None:
    answer = me(server, server.admin_pat)
    assert answer.status_code == 200
    assert answer.json()["user"]["username"] == "tessera-admin"
    assert "machine" in answer.json()["user"]


def test_plain_user_sees_and_deletes_only_its_own_sessions(server: ServerProcess) -> None:
    alice, bob = add_human(server), add_human(server)
    alice_session = sign_in(server, alice["name"])
    bob_session = sign_in(server, bob["name"])
    token = alice_session["sessionToken"]

    listed = session_call(server, "ListSessions", {}, token)
    assert listed.status_code == 200
    ids = {s["id"] for s in listed.json().get("sessions", [])}
    assert alice_session["sessionId"] in ids and bob_session["sessionId"] not in ids
    assert int(listed.json()["details"]["totalResult"]) == len(ids)

    other = session_call(server, "GetSession", {"sessionId": bob_session["sessionId"]}, token)
    assert other.status_code == 403
    refused = session_call(server, "DeleteSession", {"sessionId": bob_session["sessionId"]}, token)
    assert refused.status_code == 403
    assert session_call(server, "GetSession", {"sessionId": bob_session["sessionId"]}).status_code == 200

    # A user may end their own session with its own token as bearer.
    second = sign_in(server, alice["name"])
    own = session_call(server, "DeleteSession", {"sessionId": second["sessionId"]}, token)
    assert own.status_code == 200, own.text
    assert session_call(server, "GetSession", {"sessionId": second["sessionId"]}).status_code == 404


def test_rejected_bearers_are_unauthenticated(server: ServerProcess) -> None:
    user = add_human(server)
    first = sign_in(server, user["name"])
    rotated = session_call(server, "SetSession", {"sessionId": first["sessionId"], "metadata": {"k": "dg=="}})
    assert rotated.status_code == 200
    assert me(server, first["sessionToken"]).status_code == 401  # rotated away
    assert me(server, rotated.json()["sessionToken"]).status_code == 200

    user_only = session_call(server, "CreateSession", {"checks": {"user": {"userId": user["id"]}}})
    assert me(server, user_only.json()["sessionToken"]).status_code == 401  # no authentication factor
    empty = session_call(server, "CreateSession", {})
    assert me(server, empty.json()["sessionToken"]).status_code == 401

    short = sign_in(server, user["name"], lifetime="1s")
    time.sleep(1.2)
    expired = me(server, short["sessionToken"])
    assert expired.status_code == 401
    assert error_id(expired) == "AUTH-7fs1e" or expired.json()["details"][0]["id"] == "AUTH-7fs1e"

    deleted = sign_in(server, user["name"])
    assert session_call(server, "DeleteSession", {"sessionId": deleted["sessionId"]}).status_code == 200
    assert me(server, deleted["sessionToken"]).status_code == 401
    assert me(server, "tses_123.notatoken").status_code == 401
    # Connect calls reject the same way.
    assert session_call(server, "ListSessions", {}, deleted["sessionToken"]).status_code == 401


def _totp_user(server: ServerProcess) -> tuple[dict[str, str], str]:
    user = add_human(server)
    registered = connect(server, "UserService", "RegisterTOTP", {"userId": user["id"]}, server.admin_pat)
    secret = registered.json()["secret"]
    verified = connect(server, "UserService", "VerifyTOTPRegistration",
                       {"userId": user["id"], "code": pyotp.TOTP(secret).at(time.time() - 30)}, server.admin_pat)
    assert verified.status_code == 200, verified.text
    return user, secret


@pytest.fixture
def forced_mfa(server: ServerProcess):  # type: ignore[no-untyped-def]
    tessera_cli(server, "policy", "set", "--force-mfa")
    yield
    tessera_cli(server, "policy", "set", "--no-force-mfa")


def test_forced_mfa_needs_a_second_factor(server: ServerProcess, forced_mfa: None) -> None:
    user, secret = _totp_user(server)
    session = sign_in(server, user["name"])
    assert me(server, session["sessionToken"]).status_code == 401  # password alone is not enough now
    stepped = session_call(server, "SetSession", {"sessionId": session["sessionId"],
                                                  "checks": {"totp": {"code": pyotp.TOTP(secret).now()}}})
    assert stepped.status_code == 200, stepped.text
    assert me(server, stepped.json()["sessionToken"]).status_code == 200
    # Machine users (PATs) are not subject to MFA.
    assert me(server, server.admin_pat).status_code == 200


def test_org_policy_overrides_the_instance_default(server: ServerProcess) -> None:
    org = connect(server, "OrganizationService", "AddOrganization", {"name": f"mfa-org-{time.time_ns()}"},
                  server.admin_pat)
    org_id = org.json()["organizationId"]
    inside, outside = add_human(server, org_id=org_id), add_human(server)
    tessera_cli(server, "policy", "set", "--org", org_id, "--force-mfa")
    try:
        assert me(server, sign_in(server, inside["name"])["sessionToken"]).status_code == 401
        assert me(server, sign_in(server, outside["name"])["sessionToken"]).status_code == 200
    finally:
        tessera_cli(server, "policy", "reset", "--org", org_id)
    assert me(server, sign_in(server, inside["name"])["sessionToken"]).status_code == 200


def test_totp_step_up_and_its_errors(server: ServerProcess) -> None:
    user, secret = _totp_user(server)
    totp = pyotp.TOTP(secret)
    session = sign_in(server, user["name"])
    ok = session_call(server, "SetSession",
                      {"sessionId": session["sessionId"], "checks": {"totp": {"code": totp.now()}}})
    assert ok.status_code == 200, ok.text
    got = session_call(server, "GetSession", {"sessionId": session["sessionId"]}).json()["session"]
    first_verified = got["factors"]["totp"]["verifiedAt"]

    replay = session_call(server, "SetSession", {"sessionId": session["sessionId"],
                                                 "checks": {"totp": {"code": totp.now()}}})
    assert replay.status_code == 400 and error_id(replay) == "TOTP-Auw0a"

    wrong_code = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    wrong = session_call(server, "SetSession", {"sessionId": session["sessionId"],
                                                "checks": {"totp": {"code": wrong_code}}})
    assert wrong.status_code == 400 and error_id(wrong) == "EVENT-8isk2"

    # A re-check with the next step's code (within the skew) overwrites verifiedAt.
    again = session_call(server, "SetSession", {"sessionId": session["sessionId"],
                                                "checks": {"totp": {"code": totp.at(time.time() + 30)}}})
    assert again.status_code == 200, again.text
    got = session_call(server, "GetSession", {"sessionId": session["sessionId"]}).json()["session"]
    assert got["factors"]["totp"]["verifiedAt"] > first_verified

    plain = add_human(server)
    not_set_up = session_call(server, "CreateSession", {"checks": {"user": {"userId": plain["id"]},
                                                                   "totp": {"code": "123456"}}})
    assert not_set_up.status_code == 400 and error_id(not_set_up) == "COMMAND-3Mif9s"
    fresh, fresh_secret = _totp_user(server)
    created = session_call(server, "CreateSession", {"checks": {"user": {"userId": fresh["id"]},
                                                                "totp": {"code": pyotp.TOTP(fresh_secret).now()}}})
    assert created.status_code == 200, created.text
    read = session_call(server, "GetSession", {"sessionId": created.json()["sessionId"]}).json()["session"]
    assert set(read["factors"]) == {"user", "totp"}
