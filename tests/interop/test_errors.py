"""Errors and request decoding, exactly as ZITADEL's clients see them (SDK and raw Connect JSON)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import zitadel_client
from protobuf import Oneof
from zitadel_client.models import (
    UserServiceAddHumanUserRequest,
    UserServiceGetUserByIDRequest,
    UserServiceListQuery,
    UserServiceListUsersRequest,
    UserServiceLockUserRequest,
    UserServicePassword,
    UserServiceRemovePersonalAccessTokenRequest,
    UserServiceSetHumanEmail,
    UserServiceSetHumanProfile,
)

from tessera.gen.zitadel.object.v2 import object_pb
from tessera.gen.zitadel.user.v2 import query_pb, user_pb, user_service_pb

from ..conftest import ServerProcess
from .helpers import (
    STRONG_PASSWORD,
    WireError,
    add_human,
    add_machine,
    add_pat,
    connect_error_of,
    default_org_id,
    sdk_error,
    unique,
)

USERS = "/zitadel.user.v2.UserService"


def post(server: ServerProcess, path: str, body: Any, *, token: str | None = None, raw: bytes | None = None,
         content_type: str = "application/json") -> httpx.Response:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(server.url + path, content=content, headers=headers, timeout=30)


def connect_error(response: httpx.Response) -> WireError:
    assert response.headers["content-type"].startswith("application/json")
    return connect_error_of(response.status_code, response.json())


def human_body(username: str, **profile: str) -> dict[str, Any]:
    return {"username": username, "profile": profile or {"givenName": "Raw", "familyName": "Json"},
            "email": {"email": f"{username}@example.com"}}


# ---- authentication and permissions ---------------------------------------------------------------


def test_missing_authorization_is_unauthenticated(server: ServerProcess) -> None:
    error = connect_error(post(server, f"{USERS}/ListUsers", {}))
    assert (error.status, error.code, error.error_id) == (401, "unauthenticated", "AUTH-x8n3l")
    assert error.message == "auth header missing (AUTH-x8n3l)"


@pytest.mark.parametrize("token", ["tpat_" + "A" * 43, "tses_1.abc", "garbage", "x" * 5000])
def test_wrong_pat_is_unauthenticated(server: ServerProcess, token: str) -> None:
    client = zitadel_client.Zitadel.with_access_token(server.url, token)
    error = sdk_error(lambda: client.users.list_users(UserServiceListUsersRequest()))
    assert (error.status, error.code, error.error_id) == (401, "unauthenticated", "AUTH-7fs1e")


def test_non_bearer_scheme_is_unauthenticated(server: ServerProcess) -> None:
    response = httpx.post(server.url + f"{USERS}/ListUsers", json={},
                          headers={"Authorization": f"Basic {server.admin_pat}"})
    error = connect_error(response)
    assert (error.status, error.code, error.error_id) == (401, "unauthenticated", "AUTH-7fs1e")


def test_revoked_pat_stops_working_at_once(sdk, server: ServerProcess) -> None:  # type: ignore[no-untyped-def]
    machine_id = add_machine(sdk, org_id=default_org_id(sdk))
    token_id, token = add_pat(sdk, machine_id)
    robot = zitadel_client.Zitadel.with_access_token(server.url, token)
    assert robot.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=machine_id)).user.user_id == machine_id
    sdk.users.remove_personal_access_token(UserServiceRemovePersonalAccessTokenRequest(
        user_id=machine_id, token_id=token_id))
    error = sdk_error(lambda: robot.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=machine_id)))
    assert (error.status, error.code, error.error_id) == (401, "unauthenticated", "AUTH-7fs1e")


def test_pat_of_a_locked_machine_stops_working(sdk, server: ServerProcess) -> None:  # type: ignore[no-untyped-def]
    machine_id = add_machine(sdk, org_id=default_org_id(sdk))
    _, token = add_pat(sdk, machine_id)
    sdk.users.lock_user(UserServiceLockUserRequest(user_id=machine_id))
    robot = zitadel_client.Zitadel.with_access_token(server.url, token)
    error = sdk_error(lambda: robot.users.list_users(UserServiceListUsersRequest()))
    assert (error.status, error.code) == (401, "unauthenticated")


def test_caller_without_role_is_permission_denied(sdk, server: ServerProcess) -> None:  # type: ignore[no-untyped-def]
    org_id = default_org_id(sdk)
    machine_id = add_machine(sdk, org_id=org_id)
    _, token = add_pat(sdk, machine_id)
    robot = zitadel_client.Zitadel.with_access_token(server.url, token)
    username = unique("forbidden")
    error = sdk_error(lambda: robot.users.add_human_user(UserServiceAddHumanUserRequest(
        username=username,
        profile=UserServiceSetHumanProfile(given_name="No", family_name="Way"),
        email=UserServiceSetHumanEmail(email="no@example.com"))))
    assert (error.status, error.code, error.error_id) == (403, "permission_denied", "AUTH-AWfge")
    other = add_human(sdk)
    read = sdk_error(lambda: robot.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=other)))
    assert (read.status, read.code) == (403, "permission_denied")
    lock = sdk_error(lambda: robot.users.lock_user(UserServiceLockUserRequest(user_id=other)))
    assert (lock.status, lock.code) == (403, "permission_denied")
    # without user.read the caller only sees itself
    visible = robot.users.list_users(UserServiceListUsersRequest())
    assert [u.user_id for u in visible.result] == [machine_id]
    # nothing was created
    assert sdk.users.list_users(UserServiceListUsersRequest(queries=[{
        "userNameQuery": {"userName": username}}])).result in (None, [])


# ---- domain errors -------------------------------------------------------------------------------


def test_unknown_user_is_not_found(sdk) -> None:  # type: ignore[no-untyped-def]
    error = sdk_error(lambda: sdk.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id="123456789")))
    assert (error.status, error.code, error.error_id) == (404, "not_found", "QUERY-Dfbg2")
    assert error.message == "User could not be found (QUERY-Dfbg2)"


def test_duplicate_username_is_already_exists(sdk) -> None:  # type: ignore[no-untyped-def]
    username = unique("dup")
    add_human(sdk, username=username)
    error = sdk_error(lambda: add_human(sdk, username=username.upper()))
    assert (error.status, error.code, error.error_id) == (409, "already_exists", "COMMAND-k2unb")


def test_duplicate_user_id_is_already_exists(sdk) -> None:  # type: ignore[no-untyped-def]
    user_id = unique("fixed-id")
    request = {"user_id": user_id, "profile": UserServiceSetHumanProfile(given_name="A", family_name="B"),
               "email": UserServiceSetHumanEmail(email="a@example.com")}
    sdk.users.add_human_user(UserServiceAddHumanUserRequest(username=unique("one"), **request))
    error = sdk_error(lambda: sdk.users.add_human_user(UserServiceAddHumanUserRequest(
        username=unique("two"), **request)))
    assert (error.status, error.code, error.error_id) == (409, "already_exists", "COMMAND-k4mS9")


@pytest.mark.parametrize("password, error_id", [
    ("Sh0rt", "DOMAIN-HuJf6"),
    ("alllowercase1", "DOMAIN-VoaRj"),
    ("ALLUPPERCASE1", "DOMAIN-wRMXt"),
    ("NoDigitsHere", "DOMAIN-ZBv4H"),
])
def test_weak_password_is_invalid_argument(sdk, password: str, error_id: str) -> None:  # type: ignore[no-untyped-def]
    username = unique("weak")
    error = sdk_error(lambda: add_human(sdk, username=username, password=password))
    assert (error.status, error.code, error.error_id) == (400, "invalid_argument", error_id)
    assert "Password" in error.message and password not in error.message
    assert sdk.users.list_users(UserServiceListUsersRequest(queries=[{
        "userNameQuery": {"userName": username}}])).result in (None, [])


def test_missing_required_fields_are_invalid_argument(sdk) -> None:  # type: ignore[no-untyped-def]
    no_email = sdk_error(lambda: sdk.users.add_human_user(UserServiceAddHumanUserRequest(
        username=unique("noemail"), profile=UserServiceSetHumanProfile(given_name="A", family_name="B"))))
    assert (no_email.status, no_email.code) == (400, "invalid_argument")
    no_name = sdk_error(lambda: sdk.users.add_human_user(UserServiceAddHumanUserRequest(
        username=unique("noname"), email=UserServiceSetHumanEmail(email="a@example.com"),
        password=UserServicePassword(password=STRONG_PASSWORD))))
    assert (no_name.status, no_name.code) == (400, "invalid_argument")
    no_id = sdk_error(lambda: sdk.users.get_user_by_id(UserServiceGetUserByIDRequest()))
    assert (no_id.status, no_id.code) == (400, "invalid_argument")


def test_limit_above_maximum_is_invalid_argument(sdk) -> None:  # type: ignore[no-untyped-def]
    error = sdk_error(lambda: sdk.users.list_users(UserServiceListUsersRequest(
        query=UserServiceListQuery(limit=1001))))
    assert (error.status, error.code, error.error_id) == (400, "invalid_argument", "QUERY-4M0fs")
    assert sdk.users.list_users(UserServiceListUsersRequest(query=UserServiceListQuery(limit=1000))).details


# ---- decoding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"userId": "a"'])
def test_malformed_json_is_invalid_argument(server: ServerProcess, raw: bytes) -> None:
    error = connect_error(post(server, f"{USERS}/GetUserByID", None, token=server.admin_pat, raw=raw))
    assert (error.status, error.code, error.error_id) == (400, "invalid_argument", "API-JSON1")


@pytest.mark.parametrize("method, body", [
    ("GetUserByID", {"userId": 123}),
    ("GetUserByID", {"userId": ["a"]}),
    ("ListUsers", {"query": {"limit": "many"}}),
    ("ListUsers", {"query": {"limit": -1}}),
    ("ListUsers", {"query": {"asc": "yes"}}),
    ("ListUsers", {"queries": {"userNameQuery": {}}}),
    ("AddHumanUser", {"profile": "Ada"}),
])
def test_wrong_field_types_are_invalid_argument(server: ServerProcess, method: str, body: Any) -> None:
    error = connect_error(post(server, f"{USERS}/{method}", body, token=server.admin_pat))
    assert (error.status, error.code, error.error_id) == (400, "invalid_argument", "API-JSON1")


def _binary(message: Any) -> bytes:
    return bytes(message.to_binary())


@pytest.mark.parametrize("method, message", [
    ("ListUsers", lambda: user_service_pb.ListUsersRequest(sorting_column=query_pb.UserFieldName(99))),
    ("ListUsers", lambda: user_service_pb.ListUsersRequest(queries=[query_pb.SearchQuery(query=Oneof(
        field="user_name_query", value=query_pb.UserNameQuery(user_name="x", method=object_pb.TextQueryMethod(42))))])),
    ("ListUsers", lambda: user_service_pb.ListUsersRequest(queries=[query_pb.SearchQuery(query=Oneof(
        field="type_query", value=query_pb.TypeQuery(type=query_pb.Type(7))))])),
    ("CreateUser", lambda: user_service_pb.CreateUserRequest(user_type=Oneof(
        field="machine", value=user_service_pb.CreateUserRequest.Machine(
            name="m", access_token_type=user_pb.AccessTokenType(9))))),
])
def test_binary_enum_numbers_out_of_range_are_invalid_argument(server: ServerProcess, method: str,
                                                                message: Any) -> None:
    # binary protobuf keeps unknown enum numbers (proto3 enums are open); they must not reach the domain
    response = post(server, f"{USERS}/{method}", None, token=server.admin_pat, raw=_binary(message()),
                    content_type="application/proto")
    error = connect_error(response)
    assert (error.status, error.code, error.error_id) == (400, "invalid_argument", "API-ENUM1")


def test_binary_protobuf_requests_work(server: ServerProcess) -> None:
    response = post(server, f"{USERS}/ListUsers", None, token=server.admin_pat, content_type="application/proto",
                    raw=_binary(user_service_pb.ListUsersRequest(query=object_pb.ListQuery(limit=1))))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/proto"
    decoded = user_service_pb.ListUsersResponse.from_binary(response.content)
    assert decoded.details.total_result >= 1 and len(decoded.result) == 1
    garbage = post(server, f"{USERS}/ListUsers", None, token=server.admin_pat, content_type="application/proto",
                   raw=b"\xff\xff\xff\xff")
    error = connect_error(garbage)
    assert (error.status, error.code, error.error_id) == (400, "invalid_argument", "API-JSON1")


@pytest.mark.parametrize("sorting_column", ["USER_FIELD_NAME_SHOE_SIZE", 99])
def test_unknown_enum_values_in_json_are_invalid_argument(server: ServerProcess, sorting_column: Any) -> None:
    # protojson with DiscardUnknown (ZITADEL's gateway and connect-go) drops unknown enum values; Tessera
    # refuses them (design.md, README "Where Tessera deliberately differs"), while unknown fields stay ignored.
    response = post(server, f"{USERS}/ListUsers", {"sortingColumn": sorting_column, "query": {"limit": 1}},
                    token=server.admin_pat)
    error = connect_error(response)
    assert (error.status, error.code, error.error_id) == (400, "invalid_argument", "API-ENUM1")
    ignored = post(server, f"{USERS}/ListUsers", {"sortingFuture": sorting_column, "query": {"limit": 1}},
                   token=server.admin_pat)
    assert ignored.status_code == 200


def test_deeply_nested_json_is_invalid_argument(server: ServerProcess) -> None:
    raw = b'{"queries": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    error = connect_error(post(server, f"{USERS}/ListUsers", None, token=server.admin_pat, raw=raw))
    assert (error.status, error.code, error.error_id) == (400, "invalid_argument", "API-JSON1")


def test_deeply_nested_queries_are_invalid_argument(server: ServerProcess) -> None:
    query: dict[str, Any] = {"userNameQuery": {"userName": "x"}}
    for _ in range(30):
        query = {"notQuery": {"query": query}}
    error = connect_error(post(server, f"{USERS}/ListUsers", {"queries": [query]}, token=server.admin_pat))
    assert (error.status, error.code) == (400, "invalid_argument")


def test_two_megabyte_body_is_resource_exhausted(server: ServerProcess) -> None:
    raw = json.dumps({"userId": "x", "padding": "a" * 2_000_000}).encode()
    error = connect_error(post(server, f"{USERS}/GetUserByID", None, token=server.admin_pat, raw=raw))
    assert (error.status, error.code, error.error_id) == (429, "resource_exhausted", "API-SIZE1")
    assert error.message == "Request body is larger than 1048576 bytes (API-SIZE1)"
    # the server is fine afterwards
    assert post(server, f"{USERS}/ListUsers", {}, token=server.admin_pat).status_code == 200


def test_unsupported_content_type_is_415(server: ServerProcess) -> None:
    response = post(server, f"{USERS}/ListUsers", {}, token=server.admin_pat, content_type="text/plain")
    assert response.status_code == 415


def test_unknown_connect_method_is_not_found(server: ServerProcess) -> None:
    response = post(server, f"{USERS}/NoSuchMethod", {}, token=server.admin_pat)
    assert response.status_code == 404


# ---- JSON spellings ------------------------------------------------------------------------------


def test_camel_case_and_snake_case_requests_are_both_accepted(server: ServerProcess) -> None:
    token = server.admin_pat
    camel_name, snake_name = unique("camel"), unique("snake")
    camel = post(server, f"{USERS}/AddHumanUser", {
        **human_body(camel_name, givenName="Camel", familyName="Case"),
        "email": {"email": "camel@example.com", "isVerified": True},
        "password": {"password": STRONG_PASSWORD, "changeRequired": True}}, token=token)
    snake = post(server, f"{USERS}/AddHumanUser", {
        **human_body(snake_name, given_name="Snake", family_name="Case"),
        "email": {"email": "snake@example.com", "is_verified": True},
        "password": {"password": STRONG_PASSWORD, "change_required": True}}, token=token)
    assert camel.status_code == snake.status_code == 200
    for response, name, given in ((camel, camel_name, "Camel"), (snake, snake_name, "Snake")):
        user_id = response.json()["userId"]
        got = post(server, f"{USERS}/GetUserByID", {"user_id": user_id}, token=token).json()["user"]
        assert got["username"] == name
        assert got["human"]["profile"]["givenName"] == given
        assert got["human"]["email"] == {"email": f"{given.lower()}@example.com", "isVerified": True}
        assert got["human"]["passwordChangeRequired"] is True

    by_login = post(server, f"{USERS}/ListUsers", {"queries": [{"login_name_query": {
        "login_name": f"{snake_name}@tessera.localhost", "method": "TEXT_QUERY_METHOD_EQUALS"}}]}, token=token)
    assert [u["username"] for u in by_login.json()["result"]] == [snake_name]
    by_login_camel = post(server, f"{USERS}/ListUsers", {"queries": [{"loginNameQuery": {
        "loginName": f"{camel_name}@tessera.localhost"}}]}, token=token)
    assert [u["username"] for u in by_login_camel.json()["result"]] == [camel_name]


def test_create_user_accepts_proto_and_sdk_password_shapes(server: ServerProcess) -> None:
    token = server.admin_pat
    org_id = post(server, "/zitadel.org.v2.OrganizationService/ListOrganizations",
                  {"queries": [{"defaultQuery": {}}]}, token=token).json()["result"][0]["id"]
    shapes = {
        "proto": {"password": {"password": STRONG_PASSWORD, "changeRequired": True}},
        "sdk": {"password": {"password": {"password": STRONG_PASSWORD, "changeRequired": True}}},
        "snake": {"password": {"password": {"password": STRONG_PASSWORD, "change_required": True}}},
    }
    for shape, password in shapes.items():
        response = post(server, f"{USERS}/CreateUser", {
            "organization_id": org_id, "username": unique(shape),
            "human": {"profile": {"given_name": "Shape", "familyName": shape},
                      "email": {"email": "shape@example.com"}, **password}}, token=token)
        assert response.status_code == 200, response.text
        user = post(server, f"{USERS}/GetUserByID", {"userId": response.json()["id"]}, token=token).json()["user"]
        assert user["human"]["passwordChangeRequired"] is True, shape
        assert "passwordChanged" in user["human"], shape


def test_unknown_fields_are_ignored(server: ServerProcess) -> None:
    name = unique("unknown")
    response = post(server, f"{USERS}/AddHumanUser", {**human_body(name), "favouriteColour": "teal",
                                                      "profile": {"givenName": "U", "familyName": "K", "x": 1}},
                    token=server.admin_pat)
    assert response.status_code == 200, response.text


def test_responses_are_protobuf_json_in_camel_case(server: ServerProcess) -> None:
    token = server.admin_pat
    created = post(server, f"{USERS}/AddHumanUser", human_body(unique("shape")), token=token)
    assert created.status_code == 200
    assert created.headers["content-type"] == "application/json"
    body = created.json()
    assert set(body) == {"userId", "details"}
    assert set(body["details"]) == {"sequence", "changeDate", "resourceOwner", "creationDate"}
    assert body["details"]["sequence"] == "1"  # int64 as a string
    assert body["details"]["changeDate"].endswith("Z")

    user = post(server, f"{USERS}/GetUserByID", {"userId": body["userId"]}, token=token).json()
    assert set(user) == {"details", "user"}
    assert {"userId", "state", "username", "loginNames", "preferredLoginName", "human"} <= set(user["user"])
    assert user["user"]["state"] == "USER_STATE_ACTIVE"
    assert "passwordChangeRequired" not in user["user"]["human"]  # false is a default, so omitted
    listed = post(server, f"{USERS}/ListUsers", {"query": {"limit": 1}}, token=token).json()
    assert isinstance(listed["details"]["totalResult"], str)
