"""A response that cannot be encoded is ``internal`` with the ID API-INT01 on every protocol, its cause logged
on the server and never sent: connectrpc would otherwise answer ``unknown`` with the exception's text."""

from __future__ import annotations

import logging

import httpx
import pytest
from connectrpc.code import Code as WireCode
from connectrpc.errors import ConnectError
from protobuf.wkt import Timestamp

from tessera.api.compat import CheckedBinaryCodec, TolerantJSONCodec
from tessera.gen.zitadel.session.v2 import session_pb
from tessera.gen.zitadel.session.v2 import session_service_pb as pb

from ..conftest import ServerProcess
from .support import call, create, execute, failure
from .test_rest import gateway_error

BEYOND_YEAR_9999_US = 300_000_000_000 * 1_000_000  # a Timestamp protobuf-JSON cannot write


@pytest.mark.parametrize(("codec", "message"), [
    (TolerantJSONCodec(), session_pb.Session(id="1", creation_date=Timestamp(seconds=300_000_000_000))),
    (CheckedBinaryCodec(), session_pb.Session(id="\ud800")),  # a lone surrogate is not UTF-8
])
def test_codec_encoding_failures_are_internal(codec: TolerantJSONCodec | CheckedBinaryCodec,
                                              message: session_pb.Session, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="tessera.api"), pytest.raises(ConnectError) as info:
        codec.encode(message)
    error = info.value
    assert (error.code, error.message) == (WireCode.INTERNAL, "Internal error (API-INT01)")
    assert [d.type_name for d in error.details] == ["zitadel.v1.ErrorDetail"]
    assert "out of range" not in str(error) and "surrogate" not in str(error)
    assert any("encoding a Session" in r.getMessage() and r.exc_info for r in caplog.records)


def test_an_unencodable_response_is_internal_on_connect_and_rest(server: ServerProcess) -> None:
    sid = create(server)["sessionId"]
    execute(server, "UPDATE sessions SET expires_at = :at WHERE id = :id", at=BEYOND_YEAR_9999_US, id=sid)

    answer = call(server, "GetSession", {"sessionId": sid})
    assert failure(answer) == (500, "internal", "API-INT01")
    assert answer.json()["message"] == "Internal error (API-INT01)"
    listed = call(server, "ListSessions", {"queries": [{"idsQuery": {"ids": [sid]}}]})
    assert failure(listed) == (500, "internal", "API-INT01")
    rest = httpx.get(f"{server.url}/v2/sessions/{sid}", headers={"authorization": f"Bearer {server.admin_pat}"})
    assert gateway_error(rest) == (500, 13, "API-INT01")
    for response in (answer, listed, rest):
        assert "range" not in response.text and "Traceback" not in response.text
    assert "unexpected error while encoding a GetSessionResponse" in server.log()

    # The binary codec can write that time, so binary clients still get the session.
    binary = httpx.post(f"{server.url}/zitadel.session.v2.SessionService/GetSession",
                        content=pb.GetSessionRequest(session_id=sid).to_binary(),
                        headers={"content-type": "application/proto", "authorization": f"Bearer {server.admin_pat}"})
    assert binary.status_code == 200
    assert pb.GetSessionResponse.from_binary(binary.content).session.id == sid
