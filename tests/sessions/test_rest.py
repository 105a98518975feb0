"""The grpc-gateway REST mapping of the Session Service and its error bodies."""

from __future__ import annotations

from typing import Any

import httpx

from ..conftest import ServerProcess
from .support import PASSWORD, add_human, b64, instance_id, user_check

ERROR_DETAIL = "type.googleapis.com/zitadel.v1.ErrorDetail"


def rest(server: ServerProcess, method: str, path: str, body: dict[str, Any] | None = None,
         token: str | None = None, **params: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token or server.admin_pat}"}
    return httpx.request(method, f"{server.url}{path}", json=body, params=params or None, headers=headers, timeout=30)


def gateway_error(response: httpx.Response) -> tuple[int, int, str]:
    """(HTTP status, gRPC code number, error ID) of a grpc-gateway error body, checking its shape."""
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert isinstance(body["code"], int)
    [detail] = body["details"]
    assert detail["@type"] in (ERROR_DETAIL, "type.googleapis.com/zitadel.v1.CredentialsCheckError"), body
    assert body["message"] == f"{detail['message']} ({detail['id']})", body
    return response.status_code, body["code"], detail["id"]


def test_create_get_patch_search_delete(server: ServerProcess) -> None:
    user = add_human(server)
    created = rest(server, "POST", "/v2/sessions", {**user_check(user["id"]), "metadata": {"k": b64("v")},
                                                    "lifetime": "18000s", "userAgent": {"fingerprintId": "fp"}})
    assert created.status_code == 201, created.text
    body = created.json()
    sid, token = body["sessionId"], body["sessionToken"]
    assert body["details"]["sequence"] == "1" and body["details"]["resourceOwner"] == instance_id(server)

    got = rest(server, "GET", f"/v2/sessions/{sid}", sessionToken=token)
    assert got.status_code == 200, got.text
    session = got.json()["session"]
    assert session["id"] == sid and session["metadata"] == {"k": b64("v")} and "expirationDate" in session
    assert rest(server, "GET", f"/v2/sessions/{sid}").status_code == 200  # admin: session.read

    patched = rest(server, "PATCH", f"/v2/sessions/{sid}", {"checks": {"password": {"password": PASSWORD}}})
    assert patched.status_code == 200, patched.text
    new_token = patched.json()["sessionToken"]
    assert patched.json()["details"]["sequence"] == "2"
    assert gateway_error(rest(server, "GET", f"/v2/sessions/{sid}", sessionToken=token)) == (403, 7, "QUERY-dsfr3")
    factors = rest(server, "GET", f"/v2/sessions/{sid}", sessionToken=new_token).json()["session"]["factors"]
    assert "password" in factors

    found = rest(server, "POST", "/v2/sessions/search", {"queries": [{"idsQuery": {"ids": [sid]}}]})
    assert found.status_code == 200
    assert [s["id"] for s in found.json()["sessions"]] == [sid] and found.json()["details"]["totalResult"] == "1"

    wrong = rest(server, "DELETE", f"/v2/sessions/{sid}", {"sessionToken": token})
    assert gateway_error(wrong) == (403, 7, "COMMAND-sGr42")
    deleted = rest(server, "DELETE", f"/v2/sessions/{sid}", {"sessionToken": new_token})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["details"]["sequence"] == "3"
    assert gateway_error(rest(server, "GET", f"/v2/sessions/{sid}")) == (404, 5, "QUERY-SFeaa")


def test_no_op_patch_returns_no_token(server: ServerProcess) -> None:
    created = rest(server, "POST", "/v2/sessions", {}).json()
    patched = rest(server, "PATCH", f"/v2/sessions/{created['sessionId']}", {})
    assert patched.status_code == 200
    assert "sessionToken" not in patched.json()
    got = rest(server, "GET", f"/v2/sessions/{created['sessionId']}", sessionToken=created["sessionToken"])
    assert got.status_code == 200


def test_path_id_wins_and_snake_case_and_unknown_fields_are_accepted(server: ServerProcess) -> None:
    first = rest(server, "POST", "/v2/sessions", {"unknownField": 1}).json()
    second = rest(server, "POST", "/v2/sessions", {}).json()
    patched = rest(server, "PATCH", f"/v2/sessions/{first['sessionId']}",
                   {"sessionId": second["sessionId"], "metadata": {"k": b64("v")}})
    assert patched.status_code == 200
    assert "metadata" in rest(server, "GET", f"/v2/sessions/{first['sessionId']}").json()["session"]
    assert "metadata" not in rest(server, "GET", f"/v2/sessions/{second['sessionId']}").json()["session"]
    got = rest(server, "GET", f"/v2/sessions/{first['sessionId']}", session_token=first["sessionToken"])
    assert gateway_error(got) == (403, 7, "QUERY-dsfr3")  # the first token was rotated by the PATCH


def test_error_bodies(server: ServerProcess) -> None:
    user = add_human(server)
    assert gateway_error(rest(server, "POST", "/v2/sessions", user_check("123456789"))) == (404, 5, "QUERY-Dfbg2")
    wrong = rest(server, "POST", "/v2/sessions", user_check(user["id"], "Wrong-passw0rd"))
    assert gateway_error(wrong) == (400, 3, "COMMAND-3M0fs")
    assert wrong.json()["details"][0]["failedAttempts"] == 1
    assert gateway_error(rest(server, "PATCH", "/v2/sessions/123456789", {})) == (404, 5, "QUERY-SFeaa")
    limit = rest(server, "POST", "/v2/sessions/search", {"query": {"limit": 1001}})
    assert gateway_error(limit) == (400, 3, "QUERY-4M0fs")
    status, code, _ = gateway_error(rest(server, "POST", "/v2/sessions", {"lifetime": "abc"}))
    assert (status, code) == (400, 3)
    unauthenticated = httpx.post(f"{server.url}/v2/sessions", json={}, headers={"authorization": "Bearer nope"})
    assert gateway_error(unauthenticated)[:2] == (401, 16)
    locked = add_human(server)
    httpx.post(f"{server.url}/v2/users/{locked['id']}/lock", json={},
               headers={"authorization": f"Bearer {server.admin_pat}"}).raise_for_status()
    assert gateway_error(rest(server, "POST", "/v2/sessions", user_check(locked["id"]))) == (400, 9, "SESSION-Gj4ko")
