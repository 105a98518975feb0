"""gRPC-Web (binary and text) on the HTTP port, CORS for browser origins, and gRPC sent to HTTP/1.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tessera.gen.grpc.health.v1 import health_pb
from tessera.gen.zitadel.session.v2 import session_service_pb as session_pb

from ..conftest import ServerProcess, running_server
from .clients import PASSWORD, SESSION, WRONG_PASSWORD_ID, add_human, channel, frame, web_call

ALLOWED = "https://login.example.com"


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"TESSERA_CORS_ORIGINS": f"{ALLOWED}, http://localhost:3000"}
    with running_server(tmp_path_factory.mktemp("grpc-web"), "sqlite", extra_env=env) as server:
        yield server


def _sign_in(server: ServerProcess, text: bool) -> tuple[str, session_pb.CreateSessionResponse]:
    with channel(server) as ch:
        user_id, _ = add_human(ch, server.admin_pat)
    request = session_pb.CreateSessionRequest.from_json(
        f'{{"checks": {{"user": {{"userId": "{user_id}"}}, "password": {{"password": "{PASSWORD}"}}}}}}')
    answer = web_call(server, SESSION, "CreateSession", request, server.admin_pat, text=text)
    return user_id, answer.single(session_pb.CreateSessionResponse)


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_session_calls_over_grpc_web(web_server: ServerProcess, text: bool) -> None:
    user_id, created = _sign_in(web_server, text)
    got = web_call(web_server, SESSION, "GetSession", session_pb.GetSessionRequest(session_id=created.session_id),
                   web_server.admin_pat, text=text)
    session = got.single(session_pb.GetSessionResponse).session
    assert session.id == created.session_id and session.factors.user.id == user_id
    if text:
        assert got.http.headers["content-type"] == "application/grpc-web-text+proto"
        assert set(got.http.content) <= set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    deleted = web_call(web_server, SESSION, "DeleteSession",
                       session_pb.DeleteSessionRequest(session_id=created.session_id), web_server.admin_pat, text=text)
    assert deleted.status == 0


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_errors_arrive_as_grpc_status_with_error_ids(web_server: ServerProcess, text: bool) -> None:
    user_id, _ = _sign_in(web_server, text)
    request = session_pb.CreateSessionRequest.from_json(
        f'{{"checks": {{"user": {{"userId": "{user_id}"}}, "password": {{"password": "Wrong-passw0rd!"}}}}}}')
    wrong = web_call(web_server, SESSION, "CreateSession", request, web_server.admin_pat, text=text)
    assert (wrong.status, wrong.error_ids) == (3, [WRONG_PASSWORD_ID])
    assert wrong.message.endswith(f"({WRONG_PASSWORD_ID})") and wrong.messages == []

    anonymous = web_call(web_server, SESSION, "ListSessions", session_pb.ListSessionsRequest(), None, text=text)
    assert anonymous.status == 16 and anonymous.error_ids


def test_text_body_that_is_not_base64_is_invalid_argument(web_server: ServerProcess) -> None:
    answer = httpx.post(f"{web_server.url}/{SESSION}/ListSessions", content=b"%%% not base64 %%%",
                        headers={"content-type": "application/grpc-web-text"}, timeout=10)
    assert answer.status_code == 200 and answer.headers["grpc-status"] == "3"


def test_health_over_grpc_web(web_server: ServerProcess) -> None:
    answer = web_call(web_server, "grpc.health.v1.Health", "Check", health_pb.HealthCheckRequest(), None, text=True)
    assert answer.single(health_pb.HealthCheckResponse).status == health_pb.HealthCheckResponse.ServingStatus.SERVING


def test_grpc_on_the_http1_port_points_to_the_grpc_port(web_server: ServerProcess) -> None:
    answer = httpx.post(f"{web_server.url}/{SESSION}/ListSessions",
                        content=frame(session_pb.ListSessionsRequest().to_binary()),
                        headers={"content-type": "application/grpc", "te": "trailers"}, timeout=10)
    assert answer.status_code == 200 and answer.headers["grpc-status"] == "14"
    assert str(web_server.grpc_port) in answer.headers["grpc-message"]


def test_cors_preflight_and_response_headers_for_allowed_origins(web_server: ServerProcess) -> None:
    path = f"{web_server.url}/{SESSION}/ListSessions"
    preflight = httpx.options(path, headers={
        "origin": ALLOWED, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-grpc-web,x-user-agent"}, timeout=10)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    assert int(preflight.headers["access-control-max-age"]) > 0

    answer = web_call(web_server, SESSION, "ListSessions", session_pb.ListSessionsRequest(), web_server.admin_pat,
                      headers={"origin": ALLOWED})
    assert answer.status == 0
    assert answer.http.headers["access-control-allow-origin"] == ALLOWED
    exposed = {h.strip() for h in answer.http.headers["access-control-expose-headers"].split(",")}
    assert {"grpc-status", "grpc-message", "grpc-status-details-bin"} <= exposed

    # Trailers-only error answers carry the status in headers; the browser may read them.
    refused = httpx.post(path, content=frame(b""), timeout=10, headers={
        "origin": ALLOWED, "content-type": "application/grpc-web+proto"})
    assert refused.headers["access-control-allow-origin"] == ALLOWED


def test_cors_refuses_other_origins(web_server: ServerProcess) -> None:
    path = f"{web_server.url}/{SESSION}/ListSessions"
    preflight = httpx.options(path, headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
                              timeout=10)
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    answer = httpx.post(path, json={}, headers={"origin": "https://evil.example"}, timeout=10)
    assert "access-control-allow-origin" not in answer.headers


def test_no_cors_headers_without_cors_origins(tmp_path: Path) -> None:
    with running_server(tmp_path, "sqlite") as server:
        preflight = httpx.options(f"{server.url}/{SESSION}/ListSessions", timeout=10,
                                  headers={"origin": ALLOWED, "access-control-request-method": "POST"})
        assert "access-control-allow-origin" not in preflight.headers
