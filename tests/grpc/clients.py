"""Clients for the gRPC family of protocols, for the tests in this folder.

gRPC goes through grpcio (the reference C-core client) with protobuf-py messages as payloads;
gRPC-Web is spoken by hand over httpx, as a browser's fetch would.
"""

from __future__ import annotations

import base64
import struct
import uuid
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote

import grpc
import httpx
from connectrpc._gen.google.rpc.status_pb import Status  # google.rpc.Status, as connectrpc decodes it
from protobuf import Message

from tessera.gen.zitadel.message_pb import CredentialsCheckError, ErrorDetail
from tessera.gen.zitadel.user.v2 import user_service_pb as user_pb

from ..conftest import ServerProcess

M = TypeVar("M", bound=Message)

PASSWORD = "Test-Passw0rd!"
WRONG_PASSWORD_ID = "COMMAND-3M0fs"
SESSION = "zitadel.session.v2.SessionService"
USER = "zitadel.user.v2.UserService"


def channel(server: ServerProcess) -> grpc.Channel:
    return grpc.insecure_channel(server.grpc_target)


def call(ch: grpc.Channel, service: str, method: str, request: Message, response: type[M],
         token: str | None, *, timeout: float = 15, metadata: list[tuple[str, str]] | None = None) -> M:
    """One unary gRPC call; raises grpc.RpcError on a non-OK status."""
    stub = ch.unary_unary(f"/{service}/{method}", request_serializer=lambda m: m.to_binary(),
                          response_deserializer=response.from_binary)
    md = list(metadata or [])
    if token is not None:
        md.append(("authorization", f"Bearer {token}"))
    result: M = stub(request, metadata=md, timeout=timeout)
    return result


def error_ids(status_details_bin: bytes) -> list[str]:
    """The Tessera error IDs in a ``grpc-status-details-bin`` value (a serialized google.rpc.Status)."""
    status = Status.from_binary(status_details_bin)
    ids = []
    for detail in status.details:
        name = detail.type_url.rsplit("/", 1)[-1]
        if name == "zitadel.v1.ErrorDetail":
            ids.append(ErrorDetail.from_binary(detail.value).id)
        elif name == "zitadel.v1.CredentialsCheckError":
            ids.append(CredentialsCheckError.from_binary(detail.value).id)
    return ids


def rpc_error_ids(error: grpc.RpcError) -> list[str]:
    trailers = dict(error.trailing_metadata() or ())
    raw = trailers.get("grpc-status-details-bin", b"")
    return error_ids(raw if isinstance(raw, bytes) else base64.b64decode(raw + "==="))


def add_human(ch: grpc.Channel, token: str) -> tuple[str, str]:
    """A new human user with PASSWORD, created over gRPC; returns (user ID, username)."""
    name = f"g{uuid.uuid4().hex[:10]}"
    request = user_pb.AddHumanUserRequest.from_json(
        f'{{"username": "{name}", "profile": {{"givenName": "Grpc", "familyName": "Client"}},'
        f' "email": {{"email": "{name}@example.com", "isVerified": true}},'
        f' "password": {{"password": "{PASSWORD}", "changeRequired": false}}}}')
    answer = call(ch, USER, "AddHumanUser", request, user_pb.AddHumanUserResponse, token)
    return answer.user_id, name


@dataclass
class H2Answer:
    headers: dict[str, str]
    body: bytes
    trailers: dict[str, str]

    @property
    def grpc_status(self) -> str:
        """The status from the trailers, or from the headers of a trailers-only answer."""
        return self.trailers.get("grpc-status", self.headers.get("grpc-status", ""))


def h2_post(target: str, path: str, headers: dict[str, str], body: bytes, timeout: float = 15) -> H2Answer:
    """One request over cleartext HTTP/2 with prior knowledge, reading the trailers too (httpx cannot)."""
    import socket

    import h2.config
    import h2.connection
    import h2.events

    host, port = target.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":authority", target),
                                   (":path", path), *headers.items()])
        conn.send_data(stream, body, end_stream=True)
        sock.sendall(conn.data_to_send())
        answer = H2Answer({}, b"", {})
        done = False
        while not done:
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    answer.headers = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    answer.body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.TrailersReceived):
                    answer.trailers = dict(event.headers)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    done = True
            sock.sendall(conn.data_to_send())
        return answer


# ---- gRPC-Web ---------------------------------------------------------------------------------


def frame(payload: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(payload)) + payload


def unframe(body: bytes) -> list[tuple[int, bytes]]:
    frames, at = [], 0
    while at < len(body):
        flags, size = struct.unpack(">BI", body[at:at + 5])
        frames.append((flags, body[at + 5:at + 5 + size]))
        at += 5 + size
    assert at == len(body), "trailing bytes after the last frame"
    return frames


@dataclass
class WebAnswer:
    http: httpx.Response
    messages: list[bytes]
    trailers: dict[str, str]

    @property
    def status(self) -> int:
        return int(self.trailers["grpc-status"])

    @property
    def message(self) -> str:
        return unquote(self.trailers.get("grpc-message", ""))

    @property
    def error_ids(self) -> list[str]:
        raw = self.trailers.get("grpc-status-details-bin", "")
        return error_ids(base64.b64decode(raw + "=" * (-len(raw) % 4))) if raw else []

    def single(self, response: type[M]) -> M:
        assert self.status == 0, (self.status, self.message)
        [payload] = self.messages
        return response.from_binary(payload)


def web_call(server: ServerProcess, service: str, method: str, request: Message, token: str | None,
             *, text: bool = False, headers: dict[str, str] | None = None) -> WebAnswer:
    """One gRPC-Web call on the HTTP port, binary or base64 text, decoded down to frames and trailers."""
    body = frame(request.to_binary())
    sent = {"content-type": "application/grpc-web-text" if text else "application/grpc-web+proto",
            "x-grpc-web": "1", **(headers or {})}
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    answer = httpx.post(f"{server.url}/{service}/{method}", content=base64.b64encode(body) if text else body,
                        headers=sent, timeout=15)
    assert answer.status_code == 200, answer.text
    raw = answer.content
    if text:
        assert answer.headers["content-type"].startswith("application/grpc-web-text")
        raw = _b64_pieces(raw)
    else:
        assert answer.headers["content-type"].startswith("application/grpc-web")
    messages, trailers = [], {k: v for k, v in answer.headers.items() if k.startswith("grpc-")}
    for flags, payload in unframe(raw):
        if flags & 0x80:
            for line in payload.decode().split("\r\n"):
                if line:
                    key, value = line.split(":", 1)
                    trailers[key.strip().lower()] = value.strip()
        else:
            messages.append(payload)
    return WebAnswer(answer, messages, trailers)


def _b64_pieces(text: bytes) -> bytes:
    """Decode base64 that may be several padded pieces one after another (gRPC-Web text responses)."""
    out, start = b"", 0
    while start < len(text):
        pad = text.find(b"=", start)
        end = len(text) if pad < 0 else min(len(text), (pad // 4 + 1) * 4)
        out += base64.b64decode(text[start:end])
        start = end
    return out
