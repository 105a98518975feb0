"""Connect (JSON and binary), REST, gRPC and gRPC-Web (binary and text) give the same answers.

Every protocol goes through the same handlers; here each answer is decoded to the response
message and compared, so any difference in conversion between the adapters shows up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
from protobuf import Message

from tessera.gen.zitadel.session.v2 import session_service_pb as session_pb
from tessera.gen.zitadel.settings.v2 import settings_service_pb as settings_pb
from tessera.gen.zitadel.user.v2 import user_service_pb as user_pb

from ..conftest import ServerProcess
from .clients import PASSWORD, SESSION, USER, add_human, call, channel, web_call


@pytest.fixture(scope="module")
def ch(server: ServerProcess) -> Iterator[grpc.Channel]:
    with channel(server) as opened:
        yield opened


Fetch = Callable[[], Message]


def _answers(server: ServerProcess, ch: grpc.Channel, service: str, method: str, request: Message,
             response: type[Any], rest: tuple[str, str, dict[str, Any] | None]) -> dict[str, Message]:
    token = server.admin_pat
    auth = {"authorization": f"Bearer {token}"}
    url = f"{server.url}/{service}/{method}"

    def connect_json() -> Message:
        answer = httpx.post(url, content=request.to_json(), timeout=15,
                            headers={**auth, "content-type": "application/json"})
        assert answer.status_code == 200, answer.text
        return response.from_json(answer.text)

    def connect_proto() -> Message:
        answer = httpx.post(url, content=request.to_binary(), timeout=15,
                            headers={**auth, "content-type": "application/proto"})
        assert answer.status_code == 200, answer.text
        return response.from_binary(answer.content)

    def rest_json() -> Message:
        verb, path, body = rest
        answer = httpx.request(verb, f"{server.url}{path}", json=body, headers=auth, timeout=15)
        assert answer.status_code == 200, answer.text
        return response.from_json(answer.text)

    fetchers: dict[str, Fetch] = {
        "connect+json": connect_json,
        "connect+proto": connect_proto,
        "rest": rest_json,
        "grpc": lambda: call(ch, service, method, request, response, token),
        "grpc-web": lambda: web_call(server, service, method, request, token).single(response),
        "grpc-web-text": lambda: web_call(server, service, method, request, token, text=True).single(response),
    }
    return {name: fetch() for name, fetch in fetchers.items()}


def _assert_all_equal(answers: dict[str, Message]) -> None:
    reference = answers["connect+json"]
    for name, answer in answers.items():
        assert answer == reference, f"{name} differs from connect+json:\n{answer}\n!=\n{reference}"


def _session(server: ServerProcess, ch: grpc.Channel) -> tuple[str, str]:
    user_id, _ = add_human(ch, server.admin_pat)
    request = session_pb.CreateSessionRequest.from_json(
        f'{{"checks": {{"user": {{"userId": "{user_id}"}}, "password": {{"password": "{PASSWORD}"}}}},'
        ' "metadata": {"k": "dg=="}, "userAgent": {"fingerprintId": "fp", "ip": "192.0.2.1"}}')
    created = call(ch, SESSION, "CreateSession", request, session_pb.CreateSessionResponse, server.admin_pat)
    return user_id, created.session_id


def test_get_session_is_the_same_on_every_protocol(server: ServerProcess, ch: grpc.Channel) -> None:
    _, session_id = _session(server, ch)
    answers = _answers(server, ch, SESSION, "GetSession", session_pb.GetSessionRequest(session_id=session_id),
                       session_pb.GetSessionResponse, ("GET", f"/v2/sessions/{session_id}", None))
    _assert_all_equal(answers)
    session = answers["grpc"].session
    assert session.id == session_id and session.factors.password.verified_at is not None
    assert session.metadata == {"k": b"v"}


def test_get_user_by_id_is_the_same_on_every_protocol(server: ServerProcess, ch: grpc.Channel) -> None:
    user_id, _ = _session(server, ch)
    answers = _answers(server, ch, USER, "GetUserByID", user_pb.GetUserByIDRequest(user_id=user_id),
                       user_pb.GetUserByIDResponse, ("GET", f"/v2/users/{user_id}", None))
    _assert_all_equal(answers)
    assert answers["grpc-web"].user.user_id == user_id


def test_list_sessions_is_the_same_on_every_protocol(server: ServerProcess, ch: grpc.Channel) -> None:
    _, first = _session(server, ch)
    _, second = _session(server, ch)
    body = {"queries": [{"idsQuery": {"ids": [first, second]}}], "sortingColumn": "SESSION_FIELD_NAME_CREATION_DATE"}
    request = session_pb.ListSessionsRequest.from_json(httpx.Request("POST", "/", json=body).content)
    answers = _answers(server, ch, SESSION, "ListSessions", request, session_pb.ListSessionsResponse,
                       ("POST", "/v2/sessions/search", body))
    for answer in answers.values():  # the time of each query, so it differs between the calls
        assert answer.details.timestamp is not None
        answer.details.timestamp = None
    _assert_all_equal(answers)
    listed = answers["rest"]
    assert sorted(s.id for s in listed.sessions) == sorted([first, second])
    assert listed.details.total_result == 2


def test_get_general_settings_is_the_same_on_every_protocol(server: ServerProcess, ch: grpc.Channel) -> None:
    answers = _answers(server, ch, "zitadel.settings.v2.SettingsService", "GetGeneralSettings",
                       settings_pb.GetGeneralSettingsRequest(), settings_pb.GetGeneralSettingsResponse,
                       ("GET", "/v2/settings", None))
    _assert_all_equal(answers)
    general = answers["grpc"]
    assert general.default_org_id.isdigit()
    assert general.default_language == "en" and list(general.supported_languages) == ["en"]
