"""The lean Connect path (api/connect_unary.py) answers exactly as connectrpc does.

A unary POST without a deadline, compressed body or protocol-version header takes the lean path;
the same request with a ``connect-timeout-ms`` header goes through connectrpc. Each case is sent both
ways and the answers must match: status, content type, content encoding and body, byte for byte.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tessera.api.compat import CheckedBinaryCodec, TolerantJSONCodec
from tessera.api.connect_unary import ConnectUnary
from tessera.gen.zitadel.session.v2 import session_service_pb as pb
from tessera.gen.zitadel.session.v2.session_service_connect import SessionServiceASGIApplication

from ..conftest import ServerProcess, running_server
from ..helpers import add_human, sign_in

SESSION = "/zitadel.session.v2.SessionService"
USER = "/zitadel.user.v2.UserService"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("paths"), "sqlite") as srv:
        yield srv


@pytest.fixture(scope="module")
def signed_in(server: ServerProcess) -> dict[str, Any]:
    user = add_human(server)
    return {**sign_in(server, user["name"]), "user_id": user["id"]}


def both_ways(server: ServerProcess, path: str, body: bytes, headers: dict[str, str]) -> tuple[httpx.Response, ...]:
    with httpx.Client(timeout=30) as client:
        lean = client.post(server.url + path, content=body, headers=headers)
        full = client.post(server.url + path, content=body, headers={**headers, "connect-timeout-ms": "60000"})
    return lean, full


def assert_alike(lean: httpx.Response, full: httpx.Response) -> None:
    for response in (lean, full):
        assert response.status_code < 500, response.text
    assert lean.status_code == full.status_code, (lean.text, full.text)
    for header in ("content-type", "content-encoding"):
        assert lean.headers.get(header) == full.headers.get(header), header
    assert without_clock(lean.content) == without_clock(full.content)


def without_clock(body: bytes) -> Any:
    """The body, but a list's ``details.timestamp`` (the time of the answer) left out."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and isinstance(data.get("details"), dict) and "totalResult" in data["details"]:
        data["details"].pop("timestamp", None)
        return data
    return body


def json_headers(token: str | None) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return headers


def cases(server: ServerProcess, s: dict[str, Any]) -> list[tuple[str, str, bytes, dict[str, str]]]:
    pat = server.admin_pat
    get = f'{{"sessionId": "{s["sessionId"]}", "sessionToken": "{s["sessionToken"]}"}}'.encode()
    return [
        ("get session", SESSION + "/GetSession", get, json_headers(pat)),
        ("get session without its token", SESSION + "/GetSession",
         f'{{"sessionId": "{s["sessionId"]}"}}'.encode(), json_headers(pat)),
        ("list by user", SESSION + "/ListSessions",
         f'{{"queries": [{{"userIdQuery": {{"id": "{s["user_id"]}"}}}}]}}'.encode(), json_headers(pat)),
        ("get user", USER + "/GetUserByID", f'{{"userId": "{s["user_id"]}"}}'.encode(), json_headers(pat)),
        ("unknown session", SESSION + "/GetSession", b'{"sessionId": "404"}', json_headers(pat)),
        ("wrong token", SESSION + "/GetSession",
         f'{{"sessionId": "{s["sessionId"]}", "sessionToken": "nope"}}'.encode(), json_headers(pat)),
        ("no credentials", SESSION + "/GetSession", get, json_headers(None)),
        ("unknown token", SESSION + "/GetSession", get, json_headers("tpat_unknown")),
        ("malformed JSON", SESSION + "/GetSession", b'{"sessionId": ', json_headers(pat)),
        ("wrong type", SESSION + "/GetSession", b'{"sessionId": 7}', json_headers(pat)),
        ("unknown enum", SESSION + "/ListSessions", b'{"sortingColumn": "NOPE"}', json_headers(pat)),
        ("a JSON array", SESSION + "/GetSession", b"[]", json_headers(pat)),
        ("empty body", SESSION + "/ListSessions", b"", json_headers(pat)),
        ("body too large", SESSION + "/ListSessions", b'{"x": "' + b"a" * 2_000_000 + b'"}', json_headers(pat)),
        ("binary", SESSION + "/GetSession",
         pb.GetSessionRequest(session_id=s["sessionId"], session_token=s["sessionToken"]).to_binary(),
         {"content-type": "application/proto", "authorization": f"Bearer {pat}"}),
        ("binary garbage", SESSION + "/GetSession", b"\xff\xff\xff",
         {"content-type": "application/proto", "authorization": f"Bearer {pat}"}),
        ("gzip answer", SESSION + "/GetSession", get, {**json_headers(pat), "accept-encoding": "gzip"}),
    ]


def test_every_case_answers_alike_on_both_paths(server: ServerProcess, signed_in: dict[str, Any]) -> None:
    seen_statuses = set()
    for name, path, body, headers in cases(server, signed_in):
        lean, full = both_ways(server, path, body, headers)
        try:
            assert_alike(lean, full)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
        seen_statuses.add(lean.status_code)
    # The cases cover answers and errors of several kinds, not one status over and over.
    assert {200, 400, 401, 403, 404}.issubset(seen_statuses), seen_statuses


def test_a_gzip_answer_is_compressed_on_both_paths(server: ServerProcess, signed_in: dict[str, Any]) -> None:
    body = f'{{"sessionId": "{signed_in["sessionId"]}"}}'.encode()
    headers = {**json_headers(server.admin_pat), "accept-encoding": "gzip"}
    with httpx.Client(timeout=30) as client:
        raw = client.build_request("POST", server.url + SESSION + "/GetSession", content=body, headers=headers)
        answer = client.send(raw, stream=True)
        compressed = b"".join(answer.iter_raw())
    assert answer.headers["content-encoding"] == "gzip"
    assert gzip.decompress(compressed).startswith(b'{"session":')


def test_writes_answer_alike_on_both_paths(server: ServerProcess, signed_in: dict[str, Any]) -> None:
    """Writes cannot be repeated byte for byte (new IDs and tokens), so their shapes are compared."""
    user = signed_in["user_id"]
    body = f'{{"checks": {{"user": {{"userId": "{user}"}}}}, "metadata": {{"k": "dg=="}}}}'.encode()
    lean, full = both_ways(server, SESSION + "/CreateSession", body, json_headers(server.admin_pat))
    assert lean.status_code == full.status_code == 200, (lean.text, full.text)
    assert lean.json().keys() == full.json().keys() == {"details", "sessionId", "sessionToken"}
    assert lean.headers["content-type"] == full.headers["content-type"] == "application/json"


def test_which_requests_take_the_lean_path(tmp_path: Path) -> None:
    class Service:
        def __getattr__(self, name: str) -> Any:
            async def handler(request: Any, ctx: Any) -> Any:
                return request
            return handler

    unary = ConnectUnary([SessionServiceASGIApplication(Service(), codecs=[TolerantJSONCodec(),
                                                                           CheckedBinaryCodec()])])

    def takes(method: str, path: str, *headers: tuple[bytes, bytes]) -> bool:
        return unary.takes({"method": method, "path": path, "headers": list(headers)}) is not None

    json_type = (b"content-type", b"application/json")
    assert takes("POST", SESSION + "/GetSession", json_type)
    assert takes("POST", SESSION + "/GetSession", (b"content-type", b"application/proto"))
    assert takes("POST", SESSION + "/GetSession", json_type, (b"connect-protocol-version", b"1"))
    assert not takes("GET", SESSION + "/GetSession", json_type)
    assert not takes("POST", SESSION + "/Nope", json_type)
    assert not takes("POST", SESSION + "/GetSession", (b"content-type", b"application/json; charset=utf-8"))
    assert not takes("POST", SESSION + "/GetSession", (b"content-type", b"application/grpc"))
    assert not takes("POST", SESSION + "/GetSession", json_type, (b"connect-timeout-ms", b"100"))
    assert not takes("POST", SESSION + "/GetSession", json_type, (b"content-encoding", b"gzip"))
    assert not takes("POST", SESSION + "/GetSession", json_type, (b"connect-protocol-version", b"2"))
    assert not takes("POST", SESSION + "/GetSession")
