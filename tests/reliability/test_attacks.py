"""Regression tests for published attacks on session servers; each fails on the vulnerable behaviour.

A token is tried on every way in: Connect, REST, ``GET /v2/users/me``, gRPC (HTTP/2 port) and, where
it matters, in the body of GetSession and DeleteSession.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import pyotp
import pytest

from tessera.gen.zitadel.session.v2 import session_service_pb as session_pb
from tessera.gen.zitadel.user.v2 import user_service_pb as user_pb

from ..conftest import ServerProcess, running_server
from ..helpers import PASSWORD, add_human, connect, error_id, session_call, sign_in, tessera_cli
from .callers import grant, jwt_access_token, machine, pat_of
from .support import connect_code

# ---- every way a bearer token can be presented ---------------------------------------------------------


def _grpc_status(server: ServerProcess, token: str) -> str:
    """The gRPC status of ListSessions with ``token``; 'absent' when the server has no gRPC port."""
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = channel.unary_unary("/zitadel.session.v2.SessionService/ListSessions",
                                   request_serializer=lambda m: m.to_binary(),
                                   response_deserializer=session_pb.ListSessionsResponse.from_binary)
        try:
            stub(session_pb.ListSessionsRequest(), metadata=[("authorization", f"Bearer {token}")], timeout=15)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            return "absent" if code == grpc.StatusCode.UNAVAILABLE else str(code.name)
        return "OK"


def bearer_outcomes(server: ServerProcess, token: str) -> dict[str, str]:
    """What each protocol answers to ``token`` as a bearer: 'ok' or the refusal."""
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(timeout=30) as client:
        answers = {
            "connect": client.post(f"{server.url}/zitadel.session.v2.SessionService/ListSessions", json={},
                                   headers=headers),
            "connect-users": client.post(f"{server.url}/zitadel.user.v2.UserService/ListUsers", json={},
                                         headers=headers),
            "rest": client.post(f"{server.url}/v2/sessions/search", json={}, headers=headers),
            "users-me": client.get(f"{server.url}/v2/users/me", headers=headers),
            "auth-v1-me": client.get(f"{server.url}/auth/v1/users/me", headers=headers),
        }
    outcomes = {name: "ok" if a.status_code == 200 else f"{a.status_code} {connect_code(a)}"
                for name, a in answers.items()}
    grpc_status = _grpc_status(server, token)
    if grpc_status != "absent":
        outcomes["grpc"] = "ok" if grpc_status == "OK" else grpc_status
    return outcomes


def assert_refused_everywhere(server: ServerProcess, token: str) -> None:
    outcomes = bearer_outcomes(server, token)
    accepted = {k: v for k, v in outcomes.items() if v == "ok"}
    assert not accepted, f"token accepted by {sorted(accepted)}: {outcomes}"
    for name, outcome in outcomes.items():
        assert outcome in ("401 unauthenticated", "401 16", "UNAUTHENTICATED"), f"{name}: {outcome}"


def assert_accepted_everywhere(server: ServerProcess, token: str) -> None:
    outcomes = bearer_outcomes(server, token)
    assert all(v == "ok" for v in outcomes.values()), outcomes


def _totp_user(server: ServerProcess) -> tuple[dict[str, str], pyotp.TOTP]:
    user = add_human(server)
    secret = connect(server, "UserService", "RegisterTOTP", {"userId": user["id"]}, server.admin_pat).json()["secret"]
    totp = pyotp.TOTP(secret)
    verified = connect(server, "UserService", "VerifyTOTPRegistration",
                       {"userId": user["id"], "code": totp.at(time.time() - 30)}, server.admin_pat)
    assert verified.status_code == 200, verified.text
    return user, totp


# ---- 1. a session token used as a bearer bypasses a required second factor ----------------------------------------


@pytest.fixture
def forced_mfa(server: ServerProcess) -> Iterator[None]:
    tessera_cli(server, "policy", "set", "--force-mfa")
    try:
        yield
    finally:
        tessera_cli(server, "policy", "set", "--no-force-mfa")


def test_password_only_session_token_is_no_bearer_when_mfa_is_forced(server: ServerProcess, forced_mfa: None) -> None:
    user, totp = _totp_user(server)
    session = sign_in(server, user["name"])
    assert_refused_everywhere(server, session["sessionToken"])
    # The token still identifies its session to the login UI (GetSession with the token needs no bearer rights).
    got = session_call(server, "GetSession",
                       {"sessionId": session["sessionId"], "sessionToken": session["sessionToken"]})
    assert got.status_code == 200
    stepped = session_call(server, "SetSession", {"sessionId": session["sessionId"],
                                                  "checks": {"totp": {"code": totp.now()}}})
    assert stepped.status_code == 200, stepped.text
    assert_accepted_everywhere(server, stepped.json()["sessionToken"])
    # A user without a second factor cannot get a bearer at all while MFA is forced.
    plain = add_human(server)
    assert_refused_everywhere(server, sign_in(server, plain["name"])["sessionToken"])


# ---- 2. an identity-provider intent reused for a second session ------------------------------------------------


def test_idp_intent_cannot_be_used_for_a_second_session() -> None:
    pytest.skip("Tessera has no identity-provider intents yet (CreateSession answers unimplemented for "
                "checks.idpIntent); when they exist, succeed an intent, use it in one CreateSession, and "
                "assert a second CreateSession or SetSession with the same intent ID and token is refused")


# ---- 3. a user-agent search returning sessions that have no user agent ----------------------------------------------


def test_user_agent_search_never_returns_sessions_without_that_agent(server: ServerProcess) -> None:
    fingerprint = f"fp-{uuid.uuid4().hex[:8]}"
    with_agent = session_call(server, "CreateSession", {"userAgent": {"fingerprintId": fingerprint}}).json()
    no_agent = session_call(server, "CreateSession", {}).json()
    agent_without_fingerprint = session_call(server, "CreateSession", {"userAgent": {"ip": "10.0.0.1"}}).json()
    ids = [with_agent["sessionId"], no_agent["sessionId"], agent_without_fingerprint["sessionId"]]

    def search(query: dict[str, Any]) -> httpx.Response:
        return session_call(server, "ListSessions", {"queries": [{"idsQuery": {"ids": ids}},
                                                                 {"userAgentQuery": query}]})

    found = search({"fingerprintId": fingerprint})
    assert [s["id"] for s in found.json().get("sessions", [])] == [with_agent["sessionId"]], found.text
    for query in ({}, {"fingerprintId": ""}):  # "the caller's agent": Tessera tokens carry none
        refused = search(query)
        assert (refused.status_code, error_id(refused)) == (400, "GRPC-x8n23uh"), refused.text
    other = search({"fingerprintId": "some-other-agent"})
    assert other.status_code == 200 and not other.json().get("sessions"), other.text
    # The same over REST.
    rest = httpx.post(f"{server.url}/v2/sessions/search", timeout=30,
                      headers={"authorization": f"Bearer {server.admin_pat}"},
                      json={"queries": [{"idsQuery": {"ids": ids}}, {"userAgentQuery": {"fingerprintId": "x"}}]})
    assert rest.status_code == 200 and not rest.json().get("sessions"), rest.text


# ---- 4. parallel wrong passwords exceeding the lockout limit --------------------------------------------------------


def test_parallel_wrong_passwords_over_every_protocol_stop_at_the_limit(server: ServerProcess) -> None:
    limit = 3
    tessera_cli(server, "policy", "set", "--max-password-attempts", str(limit))
    try:
        user = add_human(server)
        session = session_call(server, "CreateSession", {"checks": {"user": {"userId": user["id"]}}}).json()
        wrong = {"password": {"password": "Wrong-Passw0rd!"}}
        admin = {"authorization": f"Bearer {server.admin_pat}"}

        def attempt(index: int) -> str:
            with httpx.Client(timeout=60) as client:
                if index % 3 == 0:
                    answer = client.post(f"{server.url}/zitadel.session.v2.SessionService/CreateSession",
                                         json={"checks": {"user": {"userId": user["id"]}, **wrong}}, headers=admin)
                elif index % 3 == 1:
                    answer = client.post(f"{server.url}/v2/sessions", headers=admin,
                                         json={"checks": {"user": {"loginName": user["name"]}, **wrong}})
                else:
                    answer = client.patch(f"{server.url}/v2/sessions/{session['sessionId']}", headers=admin,
                                          json={"checks": wrong})
            return f"{answer.status_code} {connect_code(answer)}"

        with ThreadPoolExecutor(max_workers=24) as pool:
            outcomes = list(pool.map(attempt, range(36)))
        evaluated = [o for o in outcomes if o in ("400 invalid_argument", "400 3")]
        assert len(evaluated) == limit, outcomes  # never more wrong passwords checked than the limit
        assert all(o in ("400 invalid_argument", "400 3", "400 failed_precondition", "400 9",
                         "404 not_found", "404 5") for o in outcomes), outcomes
        state = connect(server, "UserService", "GetUserByID", {"userId": user["id"]}, server.admin_pat).json()
        assert state["user"]["state"] == "USER_STATE_LOCKED"
        right = session_call(server, "CreateSession", {"checks": {"user": {"userId": user["id"]},
                                                                  "password": {"password": PASSWORD}}})
        assert right.status_code == 400, "the right password works on a locked user"
    finally:
        tessera_cli(server, "policy", "set", "--max-password-attempts", "0")


# ---- 5. a locked or deactivated user keeping working sessions or tokens ---------------------------------------------


@pytest.mark.parametrize("action", ["LockUser", "DeactivateUser"])
def test_locked_or_deactivated_human_loses_every_session(server: ServerProcess, action: str) -> None:
    user = add_human(server)
    tokens = [sign_in(server, user["name"])["sessionToken"] for _ in range(2)]
    for token in tokens:
        assert_accepted_everywhere(server, token)
    assert connect(server, "UserService", action, {"userId": user["id"]}, server.admin_pat).status_code == 200
    for token in tokens:
        assert_refused_everywhere(server, token)
    undo = "UnlockUser" if action == "LockUser" else "ReactivateUser"
    assert connect(server, "UserService", undo, {"userId": user["id"]}, server.admin_pat).status_code == 200
    for token in tokens:
        assert_refused_everywhere(server, token)  # ended sessions stay ended
    assert_accepted_everywhere(server, sign_in(server, user["name"])["sessionToken"])


@pytest.mark.parametrize("action", ["LockUser", "DeactivateUser", "DeleteUser"])
def test_locked_deactivated_or_deleted_machine_loses_its_tokens(server: ServerProcess, action: str) -> None:
    user_id = machine(server, "IAM_LOGIN_CLIENT")
    tokens = [pat_of(server, user_id)]
    tokens.append(jwt_access_token(server, user_id))
    for token in tokens:
        assert_accepted_everywhere(server, token)
    assert connect(server, "UserService", action, {"userId": user_id}, server.admin_pat).status_code == 200
    for token in tokens:
        assert_refused_everywhere(server, token)


# ---- 6. a rotated session token or a revoked PAT still accepted anywhere --------------------------------------------


def test_rotated_session_token_is_refused_everywhere(server: ServerProcess) -> None:
    user = add_human(server)
    grant(server, user["id"], "IAM_OWNER")  # so that acceptance would show as success, not denial
    first = sign_in(server, user["name"])
    assert_accepted_everywhere(server, first["sessionToken"])
    rotated = session_call(server, "SetSession", {"sessionId": first["sessionId"], "metadata": {"k": "dg=="}})
    assert rotated.status_code == 200
    second = rotated.json()["sessionToken"]
    assert second and second != first["sessionToken"]
    assert_refused_everywhere(server, first["sessionToken"])
    assert_accepted_everywhere(server, second)
    assert "grpc" in bearer_outcomes(server, second), "the gRPC port did not answer: gRPC went untested"
    # In the body, where GetSession and DeleteSession take a session token:
    old_body = {"sessionId": first["sessionId"], "sessionToken": first["sessionToken"]}
    got = session_call(server, "GetSession", old_body)
    assert (got.status_code, error_id(got)) == (403, "QUERY-dsfr3"), got.text
    rest_get = httpx.get(f"{server.url}/v2/sessions/{first['sessionId']}", timeout=30,
                         params={"sessionToken": first["sessionToken"]},
                         headers={"authorization": f"Bearer {server.admin_pat}"})
    assert rest_get.status_code == 403, rest_get.text
    deleted = session_call(server, "DeleteSession", old_body, second)
    assert (deleted.status_code, error_id(deleted)) == (403, "COMMAND-sGr42"), deleted.text
    assert session_call(server, "GetSession", {"sessionId": first["sessionId"],
                                               "sessionToken": second}).status_code == 200


def test_revoked_pat_is_refused_everywhere(server: ServerProcess) -> None:
    user_id = machine(server, "IAM_OWNER")
    added = connect(server, "UserService", "AddPersonalAccessToken", {"userId": user_id}, server.admin_pat).json()
    assert_accepted_everywhere(server, added["token"])
    removed = connect(server, "UserService", "RemovePersonalAccessToken",
                      {"userId": user_id, "tokenId": added["tokenId"]}, server.admin_pat)
    assert removed.status_code == 200
    assert_refused_everywhere(server, added["token"])


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_revocation_is_seen_at_once_by_every_worker_process(tmp_path: Path, backend: str) -> None:
    """Two processes on one database: no process may keep accepting a token another revoked."""
    with running_server(tmp_path, backend, extra_args=["--workers", "2"]) as server:
        user = add_human(server)
        first = sign_in(server, user["name"])
        user_id = machine(server, "IAM_OWNER")
        added = connect(server, "UserService", "AddPersonalAccessToken", {"userId": user_id}, server.admin_pat).json()
        for token in (first["sessionToken"], added["token"]):
            for _ in range(6):  # new connections, spread over both workers
                assert httpx.get(f"{server.url}/v2/users/me", headers={"authorization": f"Bearer {token}"},
                                 timeout=30).status_code == 200
        session_call(server, "SetSession", {"sessionId": first["sessionId"], "metadata": {"k": "dg=="}})
        connect(server, "UserService", "RemovePersonalAccessToken", {"userId": user_id, "tokenId": added["tokenId"]},
                server.admin_pat)
        for token in (first["sessionToken"], added["token"]):
            codes = {httpx.get(f"{server.url}/v2/users/me", headers={"authorization": f"Bearer {token}"},
                               timeout=30).status_code for _ in range(12)}
            assert codes == {401}, codes


# ---- 7. timing: a valid and an invalid token for the same session are rejected alike --------------------------------


def _timed(client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    answer = client.post(url, json=body, headers=headers)
    return time.perf_counter() - started, answer.status_code


def _comparable(a: list[float], b: list[float]) -> tuple[bool, str]:
    """Medians within half the larger interquartile range (plus 0.3 ms): no usable signal."""
    def iqr(values: list[float]) -> float:
        q = statistics.quantiles(values, n=4)
        return q[2] - q[0]

    difference = abs(statistics.median(a) - statistics.median(b))
    bound = 0.5 * max(iqr(a), iqr(b)) + 0.0003
    report = (f"median {statistics.median(a) * 1e3:.3f} ms vs {statistics.median(b) * 1e3:.3f} ms, "
              f"difference {difference * 1e3:.3f} ms, bound {bound * 1e3:.3f} ms")
    return difference <= bound, report


def test_rotated_and_forged_tokens_are_refused_in_indistinguishable_time(server: ServerProcess) -> None:
    user = add_human(server)
    first = sign_in(server, user["name"])
    session_id = first["sessionId"]
    rotated_token = first["sessionToken"]  # once valid: the right session, a real (old) secret
    session_call(server, "SetSession", {"sessionId": session_id, "metadata": {"k": "dg=="}})
    forged_token = f"tses_{session_id}." + "A" * len(rotated_token.split(".", 1)[1])
    url = f"{server.url}/zitadel.session.v2.SessionService/GetSession"
    admin = {"authorization": f"Bearer {server.admin_pat}"}
    samples: dict[str, list[float]] = {"rotated": [], "forged": []}
    bearer: dict[str, list[float]] = {"rotated": [], "forged": []}
    rng = random.Random(5)
    with httpx.Client(timeout=30) as client:
        for _ in range(30):  # warm up the connection, caches and code paths
            _timed(client, url, {"sessionId": session_id, "sessionToken": forged_token}, admin)
        for _ in range(200):
            order = ["rotated", "forged"]
            rng.shuffle(order)  # interleaved, in random order, so drift hits both alike
            for kind in order:
                token = rotated_token if kind == "rotated" else forged_token
                elapsed, status = _timed(client, url, {"sessionId": session_id, "sessionToken": token}, admin)
                assert status == 403
                samples[kind].append(elapsed)
                elapsed, status = _timed(client, f"{server.url}/zitadel.session.v2.SessionService/ListSessions",
                                         {}, {"authorization": f"Bearer {token}"})
                assert status == 401
                bearer[kind].append(elapsed)
    for name, measured in (("GetSession sessionToken", samples), ("bearer", bearer)):
        same, report = _comparable(measured["rotated"], measured["forged"])
        print(f"\ntiming, {name}: {report}")
        assert same, f"{name}: rotated and forged tokens are told apart by timing: {report}"


# ---- 8. the user-side bookkeeping of a wrong password stays with the user, never in answers -------------------------


def test_wrong_password_answers_do_not_say_whether_the_user_exists_by_timing_or_text(server: ServerProcess) -> None:
    """A wrong password and a missing password hash cost the same hash verification (dummy hash)."""
    user = add_human(server)
    answer = session_call(server, "CreateSession", {"checks": {"user": {"userId": user["id"]},
                                                               "password": {"password": "Wrong-Passw0rd!"}}})
    assert answer.status_code == 400 and "Wrong-Passw0rd!" not in answer.text
    machine_id = machine(server)
    no_password = session_call(server, "CreateSession", {"checks": {"user": {"userId": machine_id},
                                                                    "password": {"password": "Wrong-Passw0rd!"}}})
    assert no_password.status_code == 400 and "Wrong-Passw0rd!" not in no_password.text
    _ = user_pb  # the gRPC request types used above come from the same generated package
