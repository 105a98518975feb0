"""Enum values in JSON requests: unknown names and undefined numbers are ``invalid_argument`` (API-ENUM1)
on Connect and REST, naming the field; unknown fields are still ignored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from protobuf.wkt import Struct

from tessera.api.json_validation import check_enums, plan_for
from tessera.errors import Code, TesseraError
from tessera.gen.grpc.health.v1 import health_pb
from tessera.gen.zitadel.org.v2 import org_service_pb
from tessera.gen.zitadel.session.v2 import session_service_pb
from tessera.gen.zitadel.user.v2 import user_service_pb

from ..conftest import ServerProcess
from ..helpers import connect
from .support import add_human, call, create, failure, user_check, write_counts
from .test_rest import gateway_error


def enum_failure(response: httpx.Response) -> str:
    """The message of an API-ENUM1 failure on Connect."""
    assert failure(response) == (400, "invalid_argument", "API-ENUM1"), response.text
    return str(response.json()["message"])


@pytest.mark.parametrize(("body", "field", "shown"), [
    ({"sortingColumn": "SESSION_FIELD_NAME_BOGUS"}, "sortingColumn", '"SESSION_FIELD_NAME_BOGUS"'),
    ({"sorting_column": 7}, "sorting_column", "7"),
    ({"queries": [{"creationDateQuery": {"method": "TIMESTAMP_QUERY_METHOD_SOMETIMES"}}]},
     "queries[0].creationDateQuery.method", '"TIMESTAMP_QUERY_METHOD_SOMETIMES"'),
    ({"queries": [{"idsQuery": {"ids": ["1"]}}, {"expiration_date_query": {"method": 9}}]},
     "queries[1].expiration_date_query.method", "9"),
    ({"sortingColumn": "not an enum name, maybe a secret"}, "sortingColumn", ""),  # odd text is not echoed
])
def test_unknown_enum_values_in_connect_json(server: ServerProcess, body: dict[str, Any], field: str,
                                             shown: str) -> None:
    message = enum_failure(call(server, "ListSessions", body))
    assert message == f"{field} has an unknown value {shown}".rstrip() + " (API-ENUM1)"


def test_known_names_and_numbers_and_unknown_fields_are_accepted(server: ServerProcess) -> None:
    for body in ({"sortingColumn": "SESSION_FIELD_NAME_CREATION_DATE"}, {"sorting_column": 1}, {"sortingColumn": 0},
                 {"sortingColumn": None},
                 {"queries": [{"creationDateQuery": {"method": "TIMESTAMP_QUERY_METHOD_GREATER", "newerField": 1}}],
                  "someFutureField": {"sortingColumn": "NOT_CHECKED_HERE"},
                  "query": {"limit": 1, "futureOption": True}}):
        assert call(server, "ListSessions", body).status_code == 200, body


def test_a_bad_enum_writes_nothing(server: ServerProcess) -> None:
    before = write_counts(server)
    body = {"challenges": {"webAuthN": {"domain": "example.com", "userVerificationRequirement": "MAYBE"}}}
    message = enum_failure(call(server, "CreateSession", body))
    assert message.startswith("challenges.webAuthN.userVerificationRequirement has an unknown value")
    assert write_counts(server) == before


def test_other_services_and_nested_queries(server: ServerProcess) -> None:
    def nested(state: str) -> dict[str, Any]:
        return {"queries": [{"andQuery": {"queries": [{"notQuery": {"query": {"stateQuery": {"state": state}}}}]}}]}

    message = enum_failure(connect(server, "UserService", "ListUsers", nested("USER_STATE_NAPPING"), server.admin_pat))
    assert message.startswith("queries[0].andQuery.queries[0].notQuery.query.stateQuery.state has an unknown value")
    assert connect(server, "UserService", "ListUsers", nested("USER_STATE_ACTIVE"), server.admin_pat).status_code == 200
    orgs = connect(server, "OrganizationService", "ListOrganizations", {"sortingColumn": 42}, server.admin_pat)
    assert enum_failure(orgs) == "sortingColumn has an unknown value 42 (API-ENUM1)"


def test_rest_rejects_unknown_enum_values_and_reads_numbers_from_query_parameters(server: ServerProcess) -> None:
    headers = {"authorization": f"Bearer {server.admin_pat}"}

    def search(body: dict[str, Any], **params: str) -> httpx.Response:
        return httpx.post(f"{server.url}/v2/sessions/search", json=body, params=params or None, headers=headers)

    wrong = search({"sortingColumn": "SESSION_FIELD_NAME_BOGUS"})
    assert gateway_error(wrong) == (400, 3, "API-ENUM1")
    assert wrong.json()["message"] == 'sortingColumn has an unknown value "SESSION_FIELD_NAME_BOGUS" (API-ENUM1)'
    assert gateway_error(search({"queries": [{"creationDateQuery": {"method": 5}}]})) == (400, 3, "API-ENUM1")
    assert gateway_error(search({}, sortingColumn="9")) == (400, 3, "API-ENUM1")
    # Sorting by creation date is newest first; without a column, oldest first.
    user = add_human(server)
    ids = [create(server, user_check(user["id"]))["sessionId"] for _ in range(2)]
    mine = {"queries": [{"userIdQuery": {"id": user["id"]}}], "unknownField": True}
    for params, expected in (({}, ids), ({"sortingColumn": "1"}, ids[::-1]),
                             ({"sortingColumn": "SESSION_FIELD_NAME_CREATION_DATE"}, ids[::-1])):
        answer = search(mine, **params)
        assert answer.status_code == 200, answer.text
        assert [s["id"] for s in answer.json()["sessions"]] == expected, params


# ---- the validator itself ----------------------------------------------------------------------------------


def rejects(message_class: Any, data: Any) -> str:
    with pytest.raises(TesseraError) as info:
        check_enums(message_class, data)
    assert (info.value.code, info.value.error_id) == (Code.INVALID_ARGUMENT, "API-ENUM1")
    return info.value.text


def test_maps_repeated_fields_and_null() -> None:
    # map<string, HealthCheckResponse> whose values hold an enum
    good = {"statuses": {"a": {"status": "SERVING"}, "b": {"status": 2}, "c": None}}
    check_enums(health_pb.HealthListResponse, good)
    assert rejects(health_pb.HealthListResponse, {"statuses": {"svc.v1": {"status": "ASLEEP"}}}) == (
        'statuses[svc.v1].status has an unknown value "ASLEEP"')
    assert rejects(health_pb.HealthListResponse, {"statuses": {"a b": {"status": 99}}}) == (
        "statuses[…].status has an unknown value 99")
    listed = {"queries": [None, {"idsQuery": {}}, {"creation_date_query": {"method": 4}},
                          {"creationDateQuery": {"method": -1}}]}
    assert rejects(session_service_pb.ListSessionsRequest, listed) == (
        "queries[3].creationDateQuery.method has an unknown value -1")


def test_wrong_json_types_and_well_known_types_are_left_to_the_parser() -> None:
    for data in ({"sortingColumn": True}, {"sortingColumn": 1.5}, {"sortingColumn": ["x"]}, {"queries": "x"},
                 {"queries": [5]}, {"query": "x"}, [1], "text", None):
        check_enums(session_service_pb.ListSessionsRequest, data)
    # google.protobuf.Struct holds arbitrary JSON: nothing in it is an enum of ours
    struct = {"sessionId": "1", "checks": {"webAuthN": {"credentialAssertionData": {"status": "ANYTHING", "n": 99}}}}
    check_enums(session_service_pb.SetSessionRequest, struct)
    check_enums(Struct, {"status": "ANYTHING"})
    assert plan_for(Struct.desc()) == {}


def test_numeric_strings_only_when_asked() -> None:
    data: dict[str, Any] = {"sortingColumn": "1"}
    assert rejects(session_service_pb.ListSessionsRequest, dict(data)) == 'sortingColumn has an unknown value "1"'
    check_enums(session_service_pb.ListSessionsRequest, data, numeric_strings=True)
    assert data == {"sortingColumn": 1}  # the parser takes numbers, not numeric strings
    with pytest.raises(TesseraError):
        check_enums(session_service_pb.ListSessionsRequest, {"sortingColumn": "2"}, numeric_strings=True)


def test_plans_are_cached_and_empty_without_enums() -> None:
    assert plan_for(session_service_pb.DeleteSessionRequest.desc()) == {}
    plan = plan_for(session_service_pb.ListSessionsRequest.desc())
    assert {"sortingColumn", "sorting_column", "queries"} <= set(plan) and "query" not in plan
    assert plan_for(session_service_pb.ListSessionsRequest.desc()) is plan
    # recursive message types (user queries nest in and/or/not queries) are planned, and terminate
    queries = next(f for f in user_service_pb.ListUsersRequest.desc().fields if f.name == "queries")
    nested = plan_for(queries.value.element)
    assert {"andQuery", "orQuery", "notQuery", "stateQuery", "typeQuery"} <= set(nested)
    assert "inUserIdsQuery" not in nested  # no enum anywhere below it
    assert plan_for(org_service_pb.ListOrganizationsRequest.desc())
