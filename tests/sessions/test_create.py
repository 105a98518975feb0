"""CreateSession: checks by user ID and login name, password, metadata, lifetime, user agent, failures."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from zitadel_client.models import (
    SessionServiceCheckPassword,
    SessionServiceChecks,
    SessionServiceCheckUser,
    SessionServiceCreateSessionRequest,
    SessionServiceGetSessionRequest,
    SessionServiceHeaderValues,
    SessionServiceUserAgent,
)

from ..conftest import ServerProcess
from .support import (
    PASSWORD,
    add_human,
    b64,
    call,
    create,
    failed_attempts,
    failure,
    get_ok,
    instance_id,
    machine_with_pat,
    ok,
    sign_in,
    user_check,
    write_counts,
)

DOMAIN = "tessera.localhost"


def test_sdk_creates_a_session_with_user_password_metadata_lifetime_and_agent(server: ServerProcess, sdk: Any) -> None:
    user = add_human(server)
    created = sdk.sessions.create_session(SessionServiceCreateSessionRequest(
        checks=SessionServiceChecks(user=SessionServiceCheckUser(user_id=user["id"]),
                                    password=SessionServiceCheckPassword(password=PASSWORD)),
        metadata={"color": b64("blue"), "blob": b64(bytes(range(256)))},
        lifetime="18000s",
        user_agent=SessionServiceUserAgent(
            fingerprint_id="fp-sdk", ip="2001:DB8:0:0::1", description="Firefox on Linux",
            header={"Accept-Language": SessionServiceHeaderValues(values=["de", "en"])}),
    ))
    assert created.session_id.isdigit()
    assert created.session_token.startswith(f"tses_{created.session_id}.")
    assert created.details.sequence == "1"
    assert created.details.resource_owner == instance_id(server)
    assert created.details.change_date is not None

    session = sdk.sessions.get_session(SessionServiceGetSessionRequest(
        session_id=created.session_id, session_token=created.session_token)).session
    assert session.id == created.session_id
    assert session.sequence == "1"
    assert session.creation_date == session.change_date == created.details.change_date
    assert session.expiration_date == session.creation_date + timedelta(seconds=18000)
    assert session.factors.user.id == user["id"]
    assert session.factors.password.verified_at >= session.factors.user.verified_at
    assert session.metadata == {"color": b64("blue"), "blob": b64(bytes(range(256)))}
    agent = session.user_agent
    assert (agent.fingerprint_id, agent.ip, agent.description) == ("fp-sdk", "2001:db8::1", "Firefox on Linux")
    assert agent.header["Accept-Language"].values == ["de", "en"]


def test_wire_shape_of_the_create_response(server: ServerProcess) -> None:
    body = create(server)
    assert set(body) == {"details", "sessionId", "sessionToken"}
    assert body["details"]["sequence"] == "1"  # uint64 as a JSON string
    assert body["details"]["resourceOwner"] == instance_id(server)
    assert body["details"]["changeDate"].endswith("Z")


def test_login_name_is_matched_case_insensitively(server: ServerProcess) -> None:
    user = add_human(server)
    name = user["name"]
    for login_name in (name, name.upper(), f"{name}@{DOMAIN}", f"{name.upper()}@{DOMAIN.upper()}"):
        created = create(server, {"checks": {"user": {"loginName": login_name}, "password": {"password": PASSWORD}}})
        factors = get_ok(server, created["sessionId"])["factors"]
        assert factors["user"]["id"] == user["id"], login_name
        assert factors["user"]["loginName"] == f"{name}@{DOMAIN}"
        assert "password" in factors


def test_login_name_does_not_match_the_email(server: ServerProcess) -> None:
    user = add_human(server)
    answer = call(server, "CreateSession", {"checks": {"user": {"loginName": f"{user['name']}@example.com"}}})
    assert failure(answer) == (404, "not_found", "QUERY-Dfbg2")


def test_empty_session_has_only_ids_dates_and_sequence(server: ServerProcess) -> None:
    created = create(server)
    session = get_ok(server, created["sessionId"])
    assert set(session) == {"id", "creationDate", "changeDate", "sequence"}
    assert session["sequence"] == "1"
    assert session["creationDate"] == session["changeDate"] == created["details"]["changeDate"]


def test_user_agent_ip_is_canonical_and_unparseable_ip_is_dropped(server: ServerProcess) -> None:
    cases = {"::ffff:10.1.2.3": "10.1.2.3", "2001:0db8:0000::0001": "2001:db8::1", " 192.168.0.1 ": "192.168.0.1"}
    for raw, canonical in cases.items():
        created = create(server, {"userAgent": {"ip": raw}})
        assert get_ok(server, created["sessionId"])["userAgent"] == {"ip": canonical}
    dropped = create(server, {"userAgent": {"ip": "not-an-ip", "description": "curl"}})
    assert get_ok(server, dropped["sessionId"])["userAgent"] == {"description": "curl"}
    nothing = create(server, {"userAgent": {"ip": "999.1.1.1"}})
    assert "userAgent" not in get_ok(server, nothing["sessionId"])


def test_checks_run_in_fixed_order_whatever_the_json_order(server: ServerProcess) -> None:
    user = add_human(server)
    raw = f'{{"checks": {{"password": {{"password": {json.dumps(PASSWORD)}}}, "user": {{"userId": "{user["id"]}"}}}}}}'
    answer = httpx.post(f"{server.url}/zitadel.session.v2.SessionService/CreateSession", content=raw,
                        headers={"content-type": "application/json", "authorization": f"Bearer {server.admin_pat}"})
    factors = get_ok(server, ok(answer)["sessionId"])["factors"]
    assert factors["user"]["id"] == user["id"]
    assert "password" in factors
    # The user check runs first: an unknown user is reported, not the password.
    raw = '{"checks": {"password": {"password": "whatever-1A"}, "user": {"userId": "404404404"}}}'
    answer = httpx.post(f"{server.url}/zitadel.session.v2.SessionService/CreateSession", content=raw,
                        headers={"content-type": "application/json", "authorization": f"Bearer {server.admin_pat}"})
    assert failure(answer) == (404, "not_found", "QUERY-Dfbg2")


def _refused(server: ServerProcess, body: dict[str, Any]) -> tuple[int, str, str]:
    """Run a CreateSession that must fail and assert it wrote nothing."""
    before = write_counts(server)
    listed_before = _listed(server)
    answer = call(server, "CreateSession", body)
    assert answer.status_code != 200, answer.text
    assert "sessionId" not in answer.json()
    assert write_counts(server) == before
    assert _listed(server) == listed_before
    return failure(answer)


def _listed(server: ServerProcess) -> str:
    # Connect JSON leaves a zero out: an empty server answers no totalResult at all.
    return str(ok(call(server, "ListSessions", {}))["details"].get("totalResult", "0"))


def test_failing_checks_write_no_session(server: ServerProcess) -> None:
    user = add_human(server)
    assert _refused(server, user_check("123456789")) == (404, "not_found", "QUERY-Dfbg2")
    assert _refused(server, {"checks": {"user": {"loginName": "nobody@nowhere"}}}) == (404, "not_found", "QUERY-Dfbg2")
    assert _refused(server, user_check(user["id"], "Wrong-passw0rd")) == (400, "invalid_argument", "COMMAND-3M0fs")
    code = _refused(server, {"checks": {"password": {"password": PASSWORD}}})
    assert code[:2] == (400, "failed_precondition") and code[2]
    # With metadata, lifetime and agent too: still nothing.
    body = {**user_check(user["id"], "Wrong-passw0rd"), "metadata": {"k": b64("v")}, "lifetime": "60s",
            "userAgent": {"fingerprintId": "fp"}}
    assert _refused(server, body) == (400, "invalid_argument", "COMMAND-3M0fs")


def test_locked_and_deactivated_users_are_failed_precondition(server: ServerProcess) -> None:
    from ..helpers import connect

    for action in ("LockUser", "DeactivateUser"):
        user = add_human(server)
        ok(connect(server, "UserService", action, {"userId": user["id"]}, server.admin_pat))
        assert _refused(server, user_check(user["id"])) == (400, "failed_precondition", "SESSION-Gj4ko")
        assert _refused(server, user_check(user["id"], PASSWORD)) == (400, "failed_precondition", "SESSION-Gj4ko")
        by_name = {"checks": {"user": {"loginName": user["name"]}}}
        assert _refused(server, by_name) == (400, "failed_precondition", "SESSION-Gj4ko")


def test_failed_password_attempts_are_counted_on_the_user(server: ServerProcess) -> None:
    user = add_human(server)
    wrong = user_check(user["id"], "Wrong-passw0rd")
    assert [failed_attempts(call(server, "CreateSession", wrong)) for _ in range(3)] == [1, 2, 3]
    sign_in(server, user["name"])  # a success resets the counter
    assert failed_attempts(call(server, "CreateSession", wrong)) == 1


def test_permission_is_checked_before_the_user_lookup(server: ServerProcess) -> None:
    _, plain = machine_with_pat(server)
    for body in (user_check("123456789"), {"checks": {"user": {"loginName": "nobody@nowhere"}}}, {}):
        status, code, _ = failure(call(server, "CreateSession", body, plain))
        assert (status, code) == (403, "permission_denied")
    user = add_human(server)
    bearer = sign_in(server, user["name"])["sessionToken"]
    assert failure(call(server, "CreateSession", user_check("123456789"), bearer))[:2] == (403, "permission_denied")


def test_creator_is_the_caller_not_the_checked_user(server: ServerProcess) -> None:
    client_id, client_pat = machine_with_pat(server, role="IAM_LOGIN_CLIENT")
    user = add_human(server)
    created = create(server, user_check(user["id"], PASSWORD), client_pat)
    listed = ok(call(server, "ListSessions", {"queries": [{"creatorQuery": {"id": client_id}}]}))
    assert [s["id"] for s in listed["sessions"]] == [created["sessionId"]]
    assert get_ok(server, created["sessionId"])["factors"]["user"]["id"] == user["id"]
