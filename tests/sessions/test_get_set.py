"""GetSession (token, creator, own user, session.read) and SetSession (checks, metadata, lifetime, rotation)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from zitadel_client.models import (
    SessionServiceCheckPassword,
    SessionServiceChecks,
    SessionServiceGetSessionRequest,
    SessionServiceSetSessionRequest,
)

from ..conftest import ServerProcess
from ..helpers import connect
from .support import (
    PASSWORD,
    add_human,
    b64,
    call,
    create,
    default_org,
    execute,
    failure,
    get,
    get_ok,
    machine_with_pat,
    new_org,
    ok,
    parse_ts,
    sign_in,
    user_check,
)


def set_session(server: ServerProcess, session_id: str, token: str | None = None, **body: Any) -> dict[str, Any]:
    return ok(call(server, "SetSession", {"sessionId": session_id, **body}, token))


# ---- GetSession --------------------------------------------------------------------------------------------


def test_get_with_the_current_token_needs_no_permission(server: ServerProcess) -> None:
    created = create(server, {"metadata": {"k": b64("v")}})
    _, plain = machine_with_pat(server)
    assert get(server, created["sessionId"], plain).status_code == 403  # no token, no right
    session = get_ok(server, created["sessionId"], token=plain, session_token=created["sessionToken"])
    assert session["id"] == created["sessionId"]
    assert session["metadata"] == {"k": b64("v")}


def test_wrong_or_rotated_token_is_denied_even_for_the_admin(server: ServerProcess) -> None:
    created = create(server)
    for bad in ("wrong", created["sessionToken"] + "x", f"tses_{created['sessionId']}.bogus"):
        assert failure(get(server, created["sessionId"], session_token=bad)) == (403, "permission_denied",
                                                                                 "QUERY-dsfr3")
    other = create(server)
    assert failure(get(server, created["sessionId"], session_token=other["sessionToken"]))[2] == "QUERY-dsfr3"
    rotated = set_session(server, created["sessionId"], metadata={"k": b64("v")})
    assert failure(get(server, created["sessionId"], session_token=created["sessionToken"])) == (
        403, "permission_denied", "QUERY-dsfr3")
    assert get(server, created["sessionId"], session_token=rotated["sessionToken"]).status_code == 200




def test_the_caller_is_authenticated_before_the_session_is_looked_at(server: ServerProcess) -> None:
    # On PostgreSQL the caller's PAT and the session are read in one query (api/rpc.py, rpc_reading);
    # the answers must be those of the two reads in turn: a PAT that does not authenticate is 401
    # whatever the session, and only then is the session found or not, and its token checked.
    created = create(server)
    session_id, session_token = created["sessionId"], created["sessionToken"]
    unauthenticated = (401, "unauthenticated")

    def with_pat(pat: str, session: str = session_id, token: str | None = session_token) -> tuple[int, str, str]:
        return failure(get(server, session, pat, session_token=token))

    assert failure(get(server, session_id, "pat_" + "x" * 40, session_token=session_token))[:2] == unauthenticated
    user_id, pat = machine_with_pat(server)
    assert get_ok(server, session_id, token=pat, session_token=session_token)["id"] == session_id
    assert with_pat(pat, "123456789") == (404, "not_found", "QUERY-SFeaa")
    assert with_pat(pat, "x" * 201)[:2] == (400, "invalid_argument")
    assert with_pat(pat, token="wrong") == (403, "permission_denied", "QUERY-dsfr3")
    assert with_pat(pat, token=None) == (403, "permission_denied", "AUTH-AWfge")

    execute(server, "UPDATE personal_access_tokens SET expires_at = 1 WHERE user_id = :u", u=user_id)
    assert with_pat(pat)[:2] == with_pat(pat, "123456789")[:2] == unauthenticated
    other_id, other_pat = machine_with_pat(server)
    assert get_ok(server, session_id, token=other_pat, session_token=session_token)["id"] == session_id
    ok(connect(server, "UserService", "DeactivateUser", {"userId": other_id}, server.admin_pat))
    assert with_pat(other_pat)[:2] == with_pat(other_pat, "123456789")[:2] == unauthenticated


def test_an_empty_session_token_is_present_and_invalid(server: ServerProcess) -> None:
    # ``sessionToken`` is optional: sent but empty is not the same as absent (which the admin may read).
    created = create(server)
    assert failure(get(server, created["sessionId"], session_token="")) == (400, "invalid_argument",
                                                                            "SESSION-idLen")
    assert get(server, created["sessionId"]).status_code == 200
def test_unknown_and_deleted_sessions_are_not_found(server: ServerProcess) -> None:
    assert failure(get(server, "123456789")) == (404, "not_found", "QUERY-SFeaa")
    created = create(server)
    # Unknown is reported before the token is looked at.
    assert failure(get(server, "123456789", session_token=created["sessionToken"])) == (404, "not_found",
                                                                                         "QUERY-SFeaa")
    ok(call(server, "DeleteSession", {"sessionId": created["sessionId"]}))
    assert failure(get(server, created["sessionId"])) == (404, "not_found", "QUERY-SFeaa")
    assert failure(get(server, created["sessionId"], session_token=created["sessionToken"]))[0] == 404


def test_creator_reads_without_token_even_without_session_read(server: ServerProcess) -> None:
    creator_id, creator_pat = machine_with_pat(server, role="IAM_LOGIN_CLIENT")
    mine = create(server, {}, creator_pat)
    others = create(server)
    execute(server, "DELETE FROM memberships WHERE user_id = :u", u=creator_id)
    assert get(server, mine["sessionId"], creator_pat).status_code == 200
    assert failure(get(server, others["sessionId"], creator_pat))[:2] == (403, "permission_denied")


def test_checked_user_reads_its_sessions_with_a_session_token_bearer(server: ServerProcess) -> None:
    alice, bob = add_human(server), add_human(server)
    bearer = sign_in(server, alice["name"])["sessionToken"]
    alice_other = create(server, user_check(alice["id"]))
    bob_session = create(server, user_check(bob["id"]))
    assert get_ok(server, alice_other["sessionId"], token=bearer)["factors"]["user"]["id"] == alice["id"]
    assert failure(get(server, bob_session["sessionId"], bearer))[:2] == (403, "permission_denied")
    # With the right session token anyone authenticated may read.
    assert get(server, bob_session["sessionId"], bearer, session_token=bob_session["sessionToken"]).status_code == 200


def test_session_read_on_the_instance_or_the_users_org(server: ServerProcess) -> None:
    org = new_org(server)
    inside, outside = add_human(server, org_id=org), add_human(server)
    s_inside, s_outside, s_empty = (create(server, user_check(inside["id"])), create(server, user_check(outside["id"])),
                                    create(server))
    _, reader = machine_with_pat(server, role="IAM_USER_MANAGER")
    for s in (s_inside, s_outside, s_empty):
        assert get(server, s["sessionId"], reader).status_code == 200
    _, org_reader = machine_with_pat(server, role="ORG_USER_MANAGER", scope=org, org_id=org)
    assert get(server, s_inside["sessionId"], org_reader).status_code == 200
    assert get(server, s_outside["sessionId"], org_reader).status_code == 403
    assert get(server, s_empty["sessionId"], org_reader).status_code == 403


def test_factors_and_dates_shape(server: ServerProcess, sdk: Any) -> None:
    user = add_human(server)
    only_user = create(server, user_check(user["id"]))
    session = get_ok(server, only_user["sessionId"])
    assert set(session) == {"id", "creationDate", "changeDate", "sequence", "factors"}
    assert set(session["factors"]) == {"user"}
    factor = session["factors"]["user"]
    assert factor == {"verifiedAt": factor["verifiedAt"], "id": user["id"], "displayName": "Test User",
                      "loginName": f"{user['name']}@tessera.localhost", "organizationId": default_org(server)}
    assert parse_ts(factor["verifiedAt"]) <= parse_ts(session["creationDate"])

    full = sign_in(server, user["name"], lifetime="300s")
    got = sdk.sessions.get_session(SessionServiceGetSessionRequest(session_id=full["sessionId"])).session
    assert got.factors.password.verified_at is not None
    assert got.factors.totp is None and got.factors.web_auth_n is None and got.factors.otp_sms is None
    assert got.expiration_date == got.creation_date + timedelta(seconds=300)
    assert got.sequence == full["details"]["sequence"] == "1"
    assert got.change_date == parse_ts(full["details"]["changeDate"])


# ---- SetSession --------------------------------------------------------------------------------------------


def test_set_adds_a_password_check_and_rotates_the_token(server: ServerProcess, sdk: Any) -> None:
    user = add_human(server)
    created = create(server, user_check(user["id"]))
    answer = sdk.sessions.set_session(SessionServiceSetSessionRequest(
        session_id=created["sessionId"], checks=SessionServiceChecks(password=SessionServiceCheckPassword(
            password=PASSWORD))))
    assert answer.details.sequence == "2"
    assert answer.session_token and answer.session_token != created["sessionToken"]
    assert failure(get(server, created["sessionId"], session_token=created["sessionToken"]))[2] == "QUERY-dsfr3"
    session = get_ok(server, created["sessionId"], session_token=answer.session_token)
    assert session["sequence"] == "2"
    assert parse_ts(session["changeDate"]) == answer.details.change_date
    assert "password" in session["factors"]
    # The old token is no bearer any more, the new one is.
    assert call(server, "ListSessions", {}, created["sessionToken"]).status_code == 401
    assert call(server, "ListSessions", {}, answer.session_token).status_code == 200


def test_set_metadata_adds_changes_and_deletes_keys(server: ServerProcess) -> None:
    created = create(server, {"metadata": {"a": b64("1"), "b": b64("2")}})
    sid = created["sessionId"]
    changed = set_session(server, sid, metadata={"b": b64("two"), "c": b64("3")})
    assert get_ok(server, sid)["metadata"] == {"a": b64("1"), "b": b64("two"), "c": b64("3")}
    deleted = set_session(server, sid, metadata={"a": "", "c": ""})
    assert get_ok(server, sid)["metadata"] == {"b": b64("two")}
    assert (changed["details"]["sequence"], deleted["details"]["sequence"]) == ("2", "3")
    emptied = set_session(server, sid, metadata={"b": ""})
    assert "metadata" not in get_ok(server, sid, session_token=emptied["sessionToken"])


def test_no_op_set_returns_no_token_and_keeps_the_old_one(server: ServerProcess) -> None:
    created = create(server, {"metadata": {"a": b64("1")}})
    sid = created["sessionId"]
    for body in ({}, {"metadata": {"a": b64("1")}}, {"metadata": {"absent": ""}}, {"lifetime": "0s"}):
        answer = set_session(server, sid, **body)
        assert "sessionToken" not in answer, body
        assert answer["details"]["sequence"] == "1"
        assert answer["details"]["changeDate"] == created["details"]["changeDate"]
    assert get_ok(server, sid, session_token=created["sessionToken"])["sequence"] == "1"


def test_every_change_mints_a_new_token(server: ServerProcess) -> None:
    user = add_human(server)
    created = sign_in(server, user["name"])
    sid, token = created["sessionId"], created["sessionToken"]
    seen = {token}
    changes: list[dict[str, Any]] = [{"metadata": {"k": b64("1")}}, {"lifetime": "600s"},
                                     {"checks": {"user": {"userId": user["id"]}}},
                                     {"checks": {"password": {"password": PASSWORD}}}]
    for sequence, body in enumerate(changes, start=2):
        answer = set_session(server, sid, **body)
        assert answer["details"]["sequence"] == str(sequence)
        new = answer["sessionToken"]
        assert new not in seen
        assert get(server, sid, session_token=token).status_code == 403
        assert get(server, sid, session_token=new).status_code == 200
        seen.add(new)
        token = new


def test_recheck_of_the_same_user_overwrites_verified_at(server: ServerProcess) -> None:
    user = add_human(server)
    created = create(server, user_check(user["id"]))
    first = get_ok(server, created["sessionId"])["factors"]["user"]["verifiedAt"]
    set_session(server, created["sessionId"], checks={"user": {"loginName": user["name"]}})
    again = get_ok(server, created["sessionId"])["factors"]["user"]["verifiedAt"]
    assert parse_ts(again) > parse_ts(first)


def test_new_lifetime_counts_from_now(server: ServerProcess) -> None:
    created = create(server, {"lifetime": "18000s"})
    sid = created["sessionId"]
    first = get_ok(server, sid)
    assert parse_ts(first["expirationDate"]) == parse_ts(first["creationDate"]) + timedelta(seconds=18000)
    time.sleep(0.05)
    set_session(server, sid, lifetime="60s")
    second = get_ok(server, sid)
    assert parse_ts(second["expirationDate"]) == parse_ts(second["changeDate"]) + timedelta(seconds=60)
    assert parse_ts(second["changeDate"]) > parse_ts(second["creationDate"])
    set_session(server, sid, lifetime="36000s")
    third = get_ok(server, sid)
    assert parse_ts(third["expirationDate"]) == parse_ts(third["changeDate"]) + timedelta(seconds=36000)


def test_user_change_is_refused_with_an_empty_id(server: ServerProcess) -> None:
    alice, bob = add_human(server), add_human(server)
    created = create(server, user_check(alice["id"]))
    answer = call(server, "SetSession", {"sessionId": created["sessionId"], "checks": {"user": {"userId": bob["id"]}}})
    assert failure(answer) == (400, "invalid_argument", "")
    assert "user change not possible" in answer.json()["message"]
    assert get_ok(server, created["sessionId"])["factors"]["user"]["id"] == alice["id"]
    assert get(server, created["sessionId"], session_token=created["sessionToken"]).status_code == 200


def test_empty_session_gets_a_user_later(server: ServerProcess) -> None:
    user = add_human(server)
    created = create(server)
    answer = set_session(server, created["sessionId"], checks={"user": {"userId": user["id"]},
                                                               "password": {"password": PASSWORD}})
    factors = get_ok(server, created["sessionId"], session_token=answer["sessionToken"])["factors"]
    assert factors["user"]["id"] == user["id"] and "password" in factors


def test_failing_set_changes_nothing(server: ServerProcess) -> None:
    user = add_human(server)
    created = create(server, user_check(user["id"]))
    sid = created["sessionId"]
    body = {"sessionId": sid, "metadata": {"k": b64("v")}, "lifetime": "60s",
            "checks": {"password": {"password": "Wrong-passw0rd"}}}
    assert failure(call(server, "SetSession", body)) == (400, "invalid_argument", "COMMAND-3M0fs")
    session = get_ok(server, sid, session_token=created["sessionToken"])
    assert session["sequence"] == "1"
    assert "metadata" not in session and "expirationDate" not in session and "password" not in session["factors"]
    no_user = create(server)
    answer = call(server, "SetSession", {"sessionId": no_user["sessionId"], "checks": {"password": {"password": "x"}}})
    status, code, error_id = failure(answer)
    assert (status, code) == (400, "failed_precondition") and error_id


def test_expired_sessions_cannot_be_updated_but_stay_readable(server: ServerProcess) -> None:
    user = add_human(server)
    created = sign_in(server, user["name"], lifetime="1s")
    sid = created["sessionId"]
    time.sleep(1.2)
    for body in ({"metadata": {"k": b64("v")}}, {"lifetime": "600s"}, {}):
        answer = call(server, "SetSession", {"sessionId": sid, **body})
        assert failure(answer) == (400, "failed_precondition", "COMMAND-Hkl3d")
    assert get_ok(server, sid)["sequence"] == "1"
    assert get_ok(server, sid, session_token=created["sessionToken"])["id"] == sid
    listed = ok(call(server, "ListSessions", {"queries": [{"idsQuery": {"ids": [sid]}}]}))
    assert [s["id"] for s in listed["sessions"]] == [sid]


def test_set_on_unknown_session_is_not_found(server: ServerProcess) -> None:
    answer = call(server, "SetSession", {"sessionId": "123456789", "metadata": {"k": b64("v")}})
    assert failure(answer) == (404, "not_found", "QUERY-SFeaa")
    created = create(server)
    ok(call(server, "DeleteSession", {"sessionId": created["sessionId"]}))
    assert failure(call(server, "SetSession", {"sessionId": created["sessionId"]}))[:2] == (404, "not_found")


def test_set_authenticates_before_it_looks_at_the_session(server: ServerProcess) -> None:
    # As GetSession: on PostgreSQL the PAT and the session are read in one query, and the answers
    # are those of the two reads in turn.
    created = create(server)
    user_id, pat = machine_with_pat(server, role="IAM_OWNER")
    body = {"metadata": {"k": b64("v")}}
    written = ok(call(server, "SetSession", {"sessionId": created["sessionId"], **body}, pat))
    assert written["details"]["sequence"] == "2"
    assert failure(call(server, "SetSession", {"sessionId": "123456789", **body}, pat)) == (
        404, "not_found", "QUERY-SFeaa")
    assert failure(call(server, "SetSession", {"sessionId": "", **body}, pat))[:2] == (400, "invalid_argument")
    execute(server, "UPDATE personal_access_tokens SET expires_at = 1 WHERE user_id = :u", u=user_id)
    for sid in (created["sessionId"], "123456789", ""):
        assert failure(call(server, "SetSession", {"sessionId": sid, **body}, pat))[:2] == (401, "unauthenticated")
    assert get_ok(server, created["sessionId"])["metadata"] == {"k": b64("v")}  # nothing written since


def test_set_ignores_the_deprecated_session_token(server: ServerProcess) -> None:
    created = create(server)
    answer = set_session(server, created["sessionId"], sessionToken="not-the-token", metadata={"k": b64("v")})
    assert answer["details"]["sequence"] == "2"
    assert get(server, created["sessionId"], session_token=answer["sessionToken"]).status_code == 200


def test_unknown_ids_are_not_revealed_to_callers_without_session_write(server: ServerProcess) -> None:
    _, plain = machine_with_pat(server)
    existing = create(server)
    for sid in ("123456789", existing["sessionId"]):
        answer = call(server, "SetSession", {"sessionId": sid, "metadata": {"k": b64("v")}}, plain)
        assert failure(answer)[:2] == (403, "permission_denied")


def test_set_needs_session_write(server: ServerProcess) -> None:
    user = add_human(server)
    signed = sign_in(server, user["name"])
    # No owner exemption: the session's own user (as bearer) may not update it, nor a reader.
    answer = call(server, "SetSession", {"sessionId": signed["sessionId"], "metadata": {"k": b64("v")}},
                  signed["sessionToken"])
    assert failure(answer)[:2] == (403, "permission_denied")
    _, reader = machine_with_pat(server, role="IAM_USER_MANAGER")
    assert call(server, "SetSession", {"sessionId": signed["sessionId"], "metadata": {"k": b64("v")}},
                reader).status_code == 403
    # permission comes before the user lookup: no probing of which users exist
    for checks in ({"user": {"userId": "123456789"}}, {"user": {"loginName": "nobody@nowhere"}}):
        answer = call(server, "SetSession", {"sessionId": signed["sessionId"], "checks": checks}, reader)
        assert failure(answer)[:2] == (403, "permission_denied")
    assert get_ok(server, signed["sessionId"])["sequence"] == "1"
