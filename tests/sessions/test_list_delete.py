"""ListSessions (queries, sorting, paging, visibility) and DeleteSession (token, own user, session.delete)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from zitadel_client.models import (
    SessionServiceListQuery,
    SessionServiceListSessionsRequest,
    SessionServiceSearchQuery,
    SessionServiceSessionFieldName,
    SessionServiceUserIDQuery,
)

from ..conftest import ServerProcess
from .support import (
    add_human,
    call,
    create,
    execute,
    failure,
    get,
    get_ok,
    list_ids,
    machine_with_pat,
    new_org,
    ok,
    parse_ts,
    sign_in,
    ts,
    user_check,
)

METHODS = ("EQUALS", "GREATER", "GREATER_OR_EQUALS", "LESS", "LESS_OR_EQUALS")


def by_user(user_id: str) -> dict[str, Any]:
    return {"userIdQuery": {"id": user_id}}


def listing(*queries: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"queries": list(queries), **extra}


def sessions_of_new_user(server: ServerProcess, count: int, **body: Any) -> tuple[str, list[str]]:
    """A new user with ``count`` sessions created one after another: (user_id, session ids in creation order)."""
    user = add_human(server)
    return user["id"], [create(server, {**user_check(user["id"]), **body})["sessionId"] for _ in range(count)]


# ---- queries -----------------------------------------------------------------------------------------------


def test_ids_and_user_id_queries_are_and_combined(server: ServerProcess) -> None:
    user_id, ids = sessions_of_new_user(server, 3)
    other_id, other_ids = sessions_of_new_user(server, 1)
    assert sorted(list_ids(server, listing({"idsQuery": {"ids": [*ids[:2], other_ids[0]]}}))) == sorted(
        [*ids[:2], other_ids[0]])
    assert sorted(list_ids(server, listing(by_user(user_id)))) == sorted(ids)
    both = listing({"idsQuery": {"ids": [ids[0], other_ids[0]]}}, by_user(user_id))
    assert list_ids(server, both) == [ids[0]]
    assert list_ids(server, listing({"idsQuery": {"ids": []}}, by_user(user_id))) == []
    assert list_ids(server, listing(by_user(user_id), by_user(other_id))) == []


def test_creation_date_query_with_every_method(server: ServerProcess) -> None:
    user_id, ids = sessions_of_new_user(server, 3)
    middle = get_ok(server, ids[1])["creationDate"]
    expected = {"EQUALS": [ids[1]], "GREATER": [ids[2]], "GREATER_OR_EQUALS": ids[1:], "LESS": [ids[0]],
                "LESS_OR_EQUALS": ids[:2]}
    for method in METHODS:
        query = {"creationDateQuery": {"creationDate": middle, "method": f"TIMESTAMP_QUERY_METHOD_{method}"}}
        found = list_ids(server, listing(query, by_user(user_id), sortingColumn="SESSION_FIELD_NAME_CREATION_DATE",
                                         query={"asc": True}))
        assert found == expected[method], method


def test_expiration_date_query_with_every_method(server: ServerProcess) -> None:
    user = add_human(server)
    short, middle, long = (create(server, {**user_check(user["id"]), "lifetime": f"{s}s"})["sessionId"]
                           for s in (100, 1000, 10000))
    never = create(server, user_check(user["id"]))["sessionId"]
    at = get_ok(server, middle)["expirationDate"]
    expected = {"EQUALS": {middle}, "GREATER": {long, never}, "GREATER_OR_EQUALS": {middle, long, never},
                "LESS": {short}, "LESS_OR_EQUALS": {short, middle}}
    for method in METHODS:
        query = {"expirationDateQuery": {"expirationDate": at, "method": f"TIMESTAMP_QUERY_METHOD_{method}"}}
        assert set(list_ids(server, listing(query, by_user(user["id"])))) == expected[method], method
    # numbers work as well as names
    query = {"expirationDateQuery": {"expirationDate": at, "method": 1}}
    assert set(list_ids(server, listing(query, by_user(user["id"])))) == {long, never}


def test_creator_query(server: ServerProcess) -> None:
    client_id, client_pat = machine_with_pat(server, role="IAM_LOGIN_CLIENT")
    user = add_human(server)
    mine = [create(server, user_check(user["id"]), client_pat)["sessionId"] for _ in range(2)]
    admins = create(server, user_check(user["id"]))["sessionId"]
    # absent id: the caller
    assert sorted(list_ids(server, listing({"creatorQuery": {}}, by_user(user["id"])), client_pat)) == sorted(mine)
    assert list_ids(server, listing({"creatorQuery": {}}, by_user(user["id"]))) == [admins]
    assert sorted(list_ids(server, listing({"creatorQuery": {"id": client_id}}))) == sorted(mine)
    answer = call(server, "ListSessions", listing({"creatorQuery": {"id": ""}}))
    assert failure(answer) == (400, "invalid_argument", "GRPC-x8n24uh")


def test_user_agent_query(server: ServerProcess) -> None:
    user = add_human(server)
    fingerprint = f"fp-{time.time_ns()}"
    matching = [create(server, {**user_check(user["id"]), "userAgent": {"fingerprintId": fingerprint}})["sessionId"]
                for _ in range(2)]
    create(server, {**user_check(user["id"]), "userAgent": {"fingerprintId": "other"}})
    create(server, {**user_check(user["id"]), "userAgent": {"ip": "10.0.0.1"}})
    create(server, user_check(user["id"]))
    found = list_ids(server, listing({"userAgentQuery": {"fingerprintId": fingerprint}}))
    assert sorted(found) == sorted(matching)
    assert len(list_ids(server, listing(by_user(user["id"])))) == 5
    for query in ({"fingerprintId": ""}, {}):
        answer = call(server, "ListSessions", listing({"userAgentQuery": query}))
        assert failure(answer) == (400, "invalid_argument", "GRPC-x8n23uh")


def test_sorting_offset_and_limit(server: ServerProcess, sdk: Any) -> None:
    user_id, ids = sessions_of_new_user(server, 5)
    column = "SESSION_FIELD_NAME_CREATION_DATE"
    assert list_ids(server, listing(by_user(user_id), sortingColumn=column, query={"asc": True})) == ids
    assert list_ids(server, listing(by_user(user_id), sortingColumn=column)) == ids[::-1]  # default: descending
    page = ok(call(server, "ListSessions", listing(by_user(user_id), sortingColumn=column,
                                                     query={"asc": True, "offset": "1", "limit": 2})))
    assert [s["id"] for s in page["sessions"]] == ids[1:3]
    assert page["details"]["totalResult"] == "5"
    beyond = ok(call(server, "ListSessions", listing(by_user(user_id), query={"offset": "10"})))
    assert beyond.get("sessions", []) == [] and beyond["details"]["totalResult"] == "5"

    response = sdk.sessions.list_sessions(SessionServiceListSessionsRequest(
        query=SessionServiceListQuery(limit=3, asc=False),
        queries=[SessionServiceSearchQuery(user_id_query=SessionServiceUserIDQuery(id=user_id))],
        sorting_column=SessionServiceSessionFieldName.SESSION_FIELD_NAME_CREATION_DATE))
    assert [s.id for s in response.sessions] == ids[::-1][:3]
    assert response.details.total_result == "5"


def test_default_limit_is_100_and_maximum_is_1000(server: ServerProcess) -> None:
    user_id, _ = sessions_of_new_user(server, 101)
    page = ok(call(server, "ListSessions", listing(by_user(user_id))))
    assert len(page["sessions"]) == 100 and page["details"]["totalResult"] == "101"
    assert len(ok(call(server, "ListSessions", listing(by_user(user_id), query={"limit": 1000})))["sessions"]) == 101
    answer = call(server, "ListSessions", listing(by_user(user_id), query={"limit": 1001}))
    assert failure(answer) == (400, "invalid_argument", "QUERY-4M0fs")


def test_total_counts_only_visible_sessions(server: ServerProcess) -> None:
    alice, bob = add_human(server), add_human(server)
    bearer = sign_in(server, alice["name"])
    alice_ids = {bearer["sessionId"], create(server, user_check(alice["id"]))["sessionId"]}
    create(server, user_check(bob["id"]))
    create(server)
    seen = ok(call(server, "ListSessions", {}, bearer["sessionToken"]))
    assert {s["id"] for s in seen["sessions"]} == alice_ids
    assert seen["details"]["totalResult"] == "2"
    # even when asking for another user's sessions explicitly
    other = ok(call(server, "ListSessions", listing(by_user(bob["id"])), bearer["sessionToken"]))
    assert other.get("sessions", []) == [] and "totalResult" not in other["details"]  # 0 is omitted


def test_creator_without_session_read_lists_what_it_created(server: ServerProcess) -> None:
    client_id, client_pat = machine_with_pat(server, role="IAM_LOGIN_CLIENT")
    user = add_human(server)
    mine = {create(server, user_check(user["id"]), client_pat)["sessionId"] for _ in range(2)}
    create(server, user_check(user["id"]))
    execute(server, "DELETE FROM memberships WHERE user_id = :u", u=client_id)
    seen = ok(call(server, "ListSessions", {}, client_pat))
    assert {s["id"] for s in seen["sessions"]} == mine and seen["details"]["totalResult"] == "2"


def test_org_level_session_read_sees_that_orgs_users_only(server: ServerProcess) -> None:
    org = new_org(server)
    inside, outside = add_human(server, org_id=org), add_human(server)
    inside_id = create(server, user_check(inside["id"]))["sessionId"]
    create(server, user_check(outside["id"]))
    create(server)
    _, reader = machine_with_pat(server, role="ORG_USER_MANAGER", scope=org, org_id=org)
    seen = ok(call(server, "ListSessions", {}, reader))
    assert [s["id"] for s in seen["sessions"]] == [inside_id] and seen["details"]["totalResult"] == "1"


def test_expired_sessions_are_listed(server: ServerProcess) -> None:
    user = add_human(server)
    expired = create(server, {**user_check(user["id"]), "lifetime": "1s"})["sessionId"]
    time.sleep(1.2)
    assert list_ids(server, listing(by_user(user["id"]))) == [expired]
    session = get_ok(server, expired)
    later = ts(parse_ts(session["expirationDate"]) + timedelta(microseconds=1))
    query = {"expirationDateQuery": {"expirationDate": later, "method": "TIMESTAMP_QUERY_METHOD_LESS"}}
    assert list_ids(server, listing(query, by_user(user["id"]))) == [expired]


def test_list_response_shape(server: ServerProcess) -> None:
    user_id, ids = sessions_of_new_user(server, 1, metadata={"k": "dg=="})
    page = ok(call(server, "ListSessions", listing(by_user(user_id))))
    assert set(page["details"]) >= {"totalResult", "timestamp"}
    assert page["sessions"] == [get_ok(server, ids[0])]
    empty = ok(call(server, "ListSessions", listing({"idsQuery": {"ids": ["1"]}})))
    assert empty.get("sessions", []) == [] and "totalResult" not in empty["details"]


# ---- DeleteSession -----------------------------------------------------------------------------------------


def test_delete_with_the_token_needs_no_permission(server: ServerProcess) -> None:
    created = create(server)
    _, plain = machine_with_pat(server)
    assert failure(call(server, "DeleteSession", {"sessionId": created["sessionId"]}, plain))[:2] == (
        403, "permission_denied")
    answer = ok(call(server, "DeleteSession", {"sessionId": created["sessionId"],
                                               "sessionToken": created["sessionToken"]}, plain))
    assert answer["details"]["sequence"] == "2"
    assert failure(get(server, created["sessionId"])) == (404, "not_found", "QUERY-SFeaa")
    assert list_ids(server, listing({"idsQuery": {"ids": [created["sessionId"]]}})) == []


def test_wrong_token_is_denied_even_for_the_admin(server: ServerProcess) -> None:
    created, other = create(server), create(server)
    for bad in ("wrong", other["sessionToken"], created["sessionToken"] + "x"):
        answer = call(server, "DeleteSession", {"sessionId": created["sessionId"], "sessionToken": bad})
        assert failure(answer) == (403, "permission_denied", "COMMAND-sGr42")
    rotated = ok(call(server, "SetSession", {"sessionId": created["sessionId"], "lifetime": "60s"}))
    answer = call(server, "DeleteSession", {"sessionId": created["sessionId"], "sessionToken": created["sessionToken"]})
    assert failure(answer) == (403, "permission_denied", "COMMAND-sGr42")
    assert get(server, created["sessionId"], session_token=rotated["sessionToken"]).status_code == 200


def test_own_user_deletes_with_a_session_token_bearer(server: ServerProcess) -> None:
    alice, bob = add_human(server), add_human(server)
    bearer = sign_in(server, alice["name"])["sessionToken"]
    own = create(server, user_check(alice["id"]))
    bobs = create(server, user_check(bob["id"]))
    ok(call(server, "DeleteSession", {"sessionId": own["sessionId"]}, bearer))
    assert get(server, own["sessionId"]).status_code == 404
    assert failure(call(server, "DeleteSession", {"sessionId": bobs["sessionId"]}, bearer))[:2] == (
        403, "permission_denied")
    assert get(server, bobs["sessionId"]).status_code == 200


def test_session_delete_permission(server: ServerProcess) -> None:
    org = new_org(server)
    inside, outside = add_human(server, org_id=org), add_human(server)
    s_inside, s_outside = create(server, user_check(inside["id"])), create(server, user_check(outside["id"]))
    _, org_manager = machine_with_pat(server, role="ORG_USER_MANAGER", scope=org, org_id=org)
    assert call(server, "DeleteSession", {"sessionId": s_outside["sessionId"]}, org_manager).status_code == 403
    ok(call(server, "DeleteSession", {"sessionId": s_inside["sessionId"]}, org_manager))
    _, manager = machine_with_pat(server, role="IAM_USER_MANAGER")
    ok(call(server, "DeleteSession", {"sessionId": s_outside["sessionId"]}, manager))
    assert get(server, s_outside["sessionId"]).status_code == 404


def test_delete_twice_succeeds_and_expired_sessions_can_be_deleted(server: ServerProcess) -> None:
    created = create(server, {"lifetime": "1s"})
    time.sleep(1.2)
    first = ok(call(server, "DeleteSession", {"sessionId": created["sessionId"],
                                              "sessionToken": created["sessionToken"]}))
    assert first["details"]["sequence"] == "2"
    second = ok(call(server, "DeleteSession", {"sessionId": created["sessionId"]}))
    assert second["details"]["sequence"] == "2"
    assert second["details"]["changeDate"] == first["details"]["changeDate"]
    assert get(server, created["sessionId"]).status_code == 404
    assert list_ids(server, listing({"idsQuery": {"ids": [created["sessionId"]]}})) == []


def test_delete_again_keeps_the_same_rules(server: ServerProcess) -> None:
    alice, bob = add_human(server), add_human(server)
    alice_bearer = sign_in(server, alice["name"])["sessionToken"]
    bob_bearer = sign_in(server, bob["name"])["sessionToken"]
    own = create(server, user_check(alice["id"]))
    first = ok(call(server, "DeleteSession", {"sessionId": own["sessionId"]}, alice_bearer))
    again = ok(call(server, "DeleteSession", {"sessionId": own["sessionId"]}, alice_bearer))
    assert again["details"] == first["details"]
    # others still need session.delete, ended or not
    assert failure(call(server, "DeleteSession", {"sessionId": own["sessionId"]}, bob_bearer))[:2] == (
        403, "permission_denied")
    assert ok(call(server, "DeleteSession", {"sessionId": own["sessionId"]}))["details"] == first["details"]
    # an ID that never existed: only an instance-level session.delete holder gets the no-op success
    assert failure(call(server, "DeleteSession", {"sessionId": "123456789"}, alice_bearer))[:2] == (
        403, "permission_denied")
    assert "sequence" not in ok(call(server, "DeleteSession", {"sessionId": "123456789"}))["details"]


def test_sdk_delete_and_error_paths(server: ServerProcess, sdk: Any) -> None:
    from zitadel_client.exceptions import ApiError
    from zitadel_client.models import (
        SessionServiceChecks,
        SessionServiceCheckUser,
        SessionServiceCreateSessionRequest,
        SessionServiceDeleteSessionRequest,
        SessionServiceGetSessionRequest,
        SessionServiceSetSessionRequest,
    )

    def sdk_failure(run: Any) -> tuple[int, str, str]:
        with pytest.raises(ApiError) as info:
            run()
        body = info.value.response_body
        return info.value.code, body["code"], body["details"][0]["debug"]["id"]

    created = create(server)
    sid = created["sessionId"]
    assert sdk_failure(lambda: sdk.sessions.create_session(SessionServiceCreateSessionRequest(
        checks=SessionServiceChecks(user=SessionServiceCheckUser(user_id="123456789"))))) == (
        404, "not_found", "QUERY-Dfbg2")
    assert sdk_failure(lambda: sdk.sessions.get_session(SessionServiceGetSessionRequest(
        session_id=sid, session_token="wrong"))) == (403, "permission_denied", "QUERY-dsfr3")
    assert sdk_failure(lambda: sdk.sessions.set_session(SessionServiceSetSessionRequest(
        session_id="123456789", lifetime="60s"))) == (404, "not_found", "QUERY-SFeaa")
    assert sdk_failure(lambda: sdk.sessions.list_sessions(SessionServiceListSessionsRequest(
        query=SessionServiceListQuery(limit=1001)))) == (400, "invalid_argument", "QUERY-4M0fs")
    assert sdk_failure(lambda: sdk.sessions.delete_session(SessionServiceDeleteSessionRequest(
        session_id=sid, session_token="wrong"))) == (403, "permission_denied", "COMMAND-sGr42")
    deleted = sdk.sessions.delete_session(SessionServiceDeleteSessionRequest(
        session_id=sid, session_token=created["sessionToken"]))
    assert deleted.details.sequence == "2"
    assert sdk_failure(lambda: sdk.sessions.get_session(SessionServiceGetSessionRequest(session_id=sid))) == (
        404, "not_found", "QUERY-SFeaa")
