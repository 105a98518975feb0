"""REST (the grpc-gateway mapping) with plain httpx: same handlers, grpc-gateway shapes and statuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pyotp
import pytest

from ..conftest import ServerProcess
from .helpers import STRONG_PASSWORD, unique

DOMAIN = "tessera.localhost"


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.admin_pat}"},
                      timeout=30) as client:
        yield client


def gateway_error(response: httpx.Response) -> tuple[int, int, str]:
    """(HTTP status, gRPC code number, error ID) of a grpc-gateway error, checking its shape."""
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert isinstance(body["code"], int)
    [detail] = body["details"]
    assert detail["@type"] == "type.googleapis.com/zitadel.v1.ErrorDetail"
    assert body["message"] == f"{detail['message']} ({detail['id']})"
    return response.status_code, body["code"], detail["id"]


def add_human(api: httpx.Client, username: str | None = None, **extra: Any) -> str:
    username = username or unique("rest")
    response = api.post("/v2/users/human", json={
        "username": username, "profile": {"givenName": "Rest", "familyName": "Ful"},
        "email": {"email": f"{username}@example.com", "isVerified": True},
        "password": {"password": STRONG_PASSWORD}, **extra})
    assert response.status_code == 200, response.text
    return str(response.json()["userId"])


def add_machine(api: httpx.Client) -> str:
    response = api.post("/v2/users/new", json={"username": unique("rest-robot"),
                                               "machine": {"name": "REST robot"}})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def test_add_human_user_and_get_it(api: httpx.Client) -> None:
    username = unique("rest")
    created = api.post("/v2/users/human", json={
        "username": username, "profile": {"given_name": "Snake", "family_name": "Case"},
        "email": {"email": "snake@example.com", "is_verified": True},
        "password": {"password": STRONG_PASSWORD, "change_required": True}})
    assert created.status_code == 200
    assert created.headers["content-type"] == "application/json"
    body = created.json()
    assert set(body) == {"userId", "details"}
    assert body["details"]["sequence"] == "1"

    got = api.get(f"/v2/users/{body['userId']}")
    assert got.status_code == 200
    user = got.json()["user"]
    assert user["userId"] == body["userId"]
    assert user["state"] == "USER_STATE_ACTIVE"
    assert user["username"] == username
    assert user["loginNames"] == [f"{username}@{DOMAIN}"]
    assert user["preferredLoginName"] == f"{username}@{DOMAIN}"
    assert user["human"]["profile"]["givenName"] == "Snake"
    assert user["human"]["email"] == {"email": "snake@example.com", "isVerified": True}
    assert user["human"]["passwordChangeRequired"] is True


def test_create_user_machine_and_human(api: httpx.Client) -> None:
    machine_id = add_machine(api)
    assert api.get(f"/v2/users/{machine_id}").json()["user"]["machine"]["name"] == "REST robot"
    human = api.post("/v2/users/new", json={
        "username": unique("rest-new"),
        "human": {"profile": {"givenName": "New", "familyName": "Human"}, "email": {"email": "n@example.com"},
                  "password": {"password": STRONG_PASSWORD, "changeRequired": True}}})
    assert human.status_code == 200, human.text
    user = api.get(f"/v2/users/{human.json()['id']}").json()["user"]
    assert user["human"]["passwordChangeRequired"] is True
    sdk_shape = api.post("/v2/users/new", json={
        "username": unique("rest-sdk-shape"),
        "human": {"profile": {"givenName": "Sdk", "familyName": "Shape"}, "email": {"email": "s@example.com"},
                  "password": {"password": {"password": STRONG_PASSWORD, "changeRequired": True}}}})
    assert sdk_shape.status_code == 200, sdk_shape.text
    user = api.get(f"/v2/users/{sdk_shape.json()['id']}").json()["user"]
    assert user["human"]["passwordChangeRequired"] is True


def test_list_users(api: httpx.Client) -> None:
    tag = unique("restlist")
    ids = [add_human(api, f"{tag}-{n}") for n in ("b", "a", "c")]
    response = api.post("/v2/users", json={
        "query": {"limit": 2, "asc": True}, "sorting_column": "USER_FIELD_NAME_USER_NAME",
        "queries": [{"user_name_query": {"user_name": tag, "method": "TEXT_QUERY_METHOD_STARTS_WITH"}}]})
    assert response.status_code == 200
    body = response.json()
    assert body["details"]["totalResult"] == "3"
    assert body["sortingColumn"] == "USER_FIELD_NAME_USER_NAME"
    assert [u["username"] for u in body["result"]] == [f"{tag}-a", f"{tag}-b"]
    by_ids = api.post("/v2/users", json={"queries": [{"inUserIdsQuery": {"userIds": ids[:2]}}]}).json()
    assert sorted(u["userId"] for u in by_ids["result"]) == sorted(ids[:2])


def test_state_changes_and_delete(api: httpx.Client) -> None:
    user_id = add_human(api)
    for action, state, sequence in (("lock", "USER_STATE_LOCKED", "2"), ("unlock", "USER_STATE_ACTIVE", "3"),
                                    ("deactivate", "USER_STATE_INACTIVE", "4"),
                                    ("reactivate", "USER_STATE_ACTIVE", "5")):
        response = api.post(f"/v2/users/{user_id}/{action}")  # no body at all
        assert response.status_code == 200, response.text
        assert response.json()["details"]["sequence"] == sequence
        assert api.get(f"/v2/users/{user_id}").json()["user"]["state"] == state
    again = api.post(f"/v2/users/{user_id}/reactivate", json={})
    assert gateway_error(again)[:2] == (400, 9)  # failed_precondition

    deleted = api.delete(f"/v2/users/{user_id}")
    assert deleted.status_code == 200
    assert deleted.json()["details"]["sequence"] == "6"
    assert gateway_error(api.get(f"/v2/users/{user_id}")) == (404, 5, "QUERY-Dfbg2")
    assert gateway_error(api.delete(f"/v2/users/{user_id}")) == (404, 5, "QUERY-Dfbg2")


def test_path_parameter_wins_over_the_body(api: httpx.Client) -> None:
    target, other = add_human(api), add_human(api)
    response = api.post(f"/v2/users/{target}/lock", json={"userId": other})
    assert response.status_code == 200, response.text
    assert api.get(f"/v2/users/{target}").json()["user"]["state"] == "USER_STATE_LOCKED"
    assert api.get(f"/v2/users/{other}").json()["user"]["state"] == "USER_STATE_ACTIVE"


def test_set_password(api: httpx.Client) -> None:
    user_id = add_human(api)
    response = api.post(f"/v2/users/{user_id}/password",
                        json={"newPassword": {"password": "Rest-pw-2", "changeRequired": False}})
    assert response.status_code == 200, response.text
    assert response.json()["details"]["sequence"] == "2"
    weak = api.post(f"/v2/users/{user_id}/password", json={"newPassword": {"password": "weak"}})
    assert gateway_error(weak) == (400, 3, "DOMAIN-HuJf6")


def test_totp(api: httpx.Client) -> None:
    user_id = add_human(api)
    registered = api.post(f"/v2/users/{user_id}/totp")
    assert registered.status_code == 200, registered.text
    secret = registered.json()["secret"]
    assert registered.json()["uri"].startswith("otpauth://totp/")
    verified = api.post(f"/v2/users/{user_id}/totp/verify", json={"code": pyotp.TOTP(secret).now()})
    assert verified.status_code == 200, verified.text
    removed = api.delete(f"/v2/users/{user_id}/totp")
    assert removed.status_code == 200
    assert removed.json()["details"]["sequence"] == "4"


def test_personal_access_tokens(api: httpx.Client, server: ServerProcess) -> None:
    machine_id = add_machine(api)
    added = api.post(f"/v2/users/{machine_id}/pats", json={"expirationDate": "2099-01-01T00:00:00Z"})
    assert added.status_code == 200, added.text
    token_id, token = added.json()["tokenId"], added.json()["token"]

    listed = api.post("/v2/users/pats/search", json={"filters": [{"userIdFilter": {"id": machine_id}}]})
    assert listed.status_code == 200
    [pat] = listed.json()["result"]
    assert pat["id"] == token_id
    assert pat["userId"] == machine_id
    assert pat["expirationDate"] == "2099-01-01T00:00:00Z"
    assert "token" not in pat

    own = httpx.get(f"{server.url}/v2/users/{machine_id}", headers={"Authorization": f"Bearer {token}"})
    assert own.status_code == 200
    removed = api.delete(f"/v2/users/{machine_id}/pats/{token_id}")
    assert removed.status_code == 200
    assert "deletionDate" in removed.json()
    revoked = httpx.get(f"{server.url}/v2/users/{machine_id}", headers={"Authorization": f"Bearer {token}"})
    assert gateway_error(revoked) == (401, 16, "AUTH-7fs1e")


def test_organizations(api: httpx.Client) -> None:
    name = unique("REST Org")
    created = api.post("/v2/organizations", json={"name": name, "admins": [{"human": {
        "username": unique("rest-admin"), "profile": {"givenName": "Org", "familyName": "Admin"},
        "email": {"email": "admin@example.com"}}}]})
    assert created.status_code == 201
    body = created.json()
    assert body["details"]["sequence"] == "1"
    assert len(body["createdAdmins"]) == 1
    listed = api.post("/v2/organizations/_search", json={"queries": [{"nameQuery": {"name": name}}]})
    assert listed.status_code == 200
    [org] = listed.json()["result"]
    assert org["id"] == body["organizationId"]
    assert org["state"] == "ORGANIZATION_STATE_ACTIVE"
    duplicate = api.post("/v2/organizations", json={"name": name})
    assert gateway_error(duplicate)[:2] == (409, 6)


# ---- errors --------------------------------------------------------------------------------------


def test_missing_and_wrong_tokens_are_unauthenticated(server: ServerProcess) -> None:
    missing = httpx.post(f"{server.url}/v2/users", json={})
    assert gateway_error(missing) == (401, 16, "AUTH-x8n3l")
    assert missing.json()["message"] == "auth header missing (AUTH-x8n3l)"
    wrong = httpx.post(f"{server.url}/v2/users", json={}, headers={"Authorization": "Bearer tpat_wrong"})
    assert gateway_error(wrong) == (401, 16, "AUTH-7fs1e")


def test_permission_denied(api: httpx.Client, server: ServerProcess) -> None:
    machine_id = add_machine(api)
    token = api.post(f"/v2/users/{machine_id}/pats", json={}).json()["token"]
    response = httpx.post(f"{server.url}/v2/users/human", headers={"Authorization": f"Bearer {token}"}, json={
        "username": unique("nope"), "profile": {"givenName": "N", "familyName": "O"},
        "email": {"email": "no@example.com"}})
    assert gateway_error(response) == (403, 7, "AUTH-AWfge")


def test_duplicate_username_and_weak_password(api: httpx.Client) -> None:
    username = unique("rest-dup")
    add_human(api, username)
    duplicate = api.post("/v2/users/human", json={
        "username": username, "profile": {"givenName": "A", "familyName": "B"}, "email": {"email": "a@b.example"}})
    assert gateway_error(duplicate) == (409, 6, "COMMAND-k2unb")
    weak = api.post("/v2/users/human", json={
        "username": unique("rest-weak"), "profile": {"givenName": "A", "familyName": "B"},
        "email": {"email": "a@b.example"}, "password": {"password": "alllowercase1"}})
    assert gateway_error(weak) == (400, 3, "DOMAIN-VoaRj")


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'{"query": {"limit": "many"}}', b'{"queries": {}}'])
def test_malformed_bodies_are_invalid_argument(api: httpx.Client, raw: bytes) -> None:
    response = api.post("/v2/users", content=raw, headers={"Content-Type": "application/json"})
    assert gateway_error(response) == (400, 3, "API-JSON1")


def test_limit_above_maximum(api: httpx.Client) -> None:
    assert gateway_error(api.post("/v2/users", json={"query": {"limit": 1001}})) == (400, 3, "QUERY-4M0fs")


def test_two_megabyte_body(api: httpx.Client) -> None:
    raw = json.dumps({"padding": "a" * 2_000_000}).encode()
    response = api.post("/v2/users", content=raw, headers={"Content-Type": "application/json"})
    assert gateway_error(response) == (429, 8, "API-SIZE1")
    assert response.json()["message"] == "Request body is larger than 1048576 bytes (API-SIZE1)"


def test_unknown_route_is_404(api: httpx.Client) -> None:
    response = api.get("/v2/nothing/here")
    assert response.status_code == 404
    body = response.json()
    assert (body["code"], body["message"]) == (5, "Not Found")


@pytest.mark.parametrize("method, path", [("PUT", "/v2/users/human"), ("GET", "/v2/users"),
                                          ("PATCH", "/v2/users/123"), ("GET", "/v2/organizations")])
def test_wrong_method_is_405(api: httpx.Client, method: str, path: str) -> None:
    response = api.request(method, path)
    assert response.status_code == 405
    assert response.json()["code"] == 12
