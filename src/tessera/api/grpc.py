"""gRPC and gRPC-Web specifics around the Connect applications.

connectrpc's applications already speak Connect, gRPC and binary gRPC-Web, chosen by content
type, over the same handlers; what this module adds:

- the standard health and reflection services, mounted like any other service;
- ``application/grpc-web-text`` (base64 gRPC-Web, for browsers that cannot read binary
  streams), translated to and from binary gRPC-Web;
- a clear gRPC status for a gRPC call that reaches a server without HTTP/2 trailers (the
  HTTP/1.1 port), instead of a 500.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from ..gen.grpc.health.v1.health_connect import Health, HealthASGIApplication
from ..gen.grpc.reflection.v1 import reflection_connect as reflection_v1
from ..gen.grpc.reflection.v1alpha import reflection_connect as reflection_v1alpha
from .health import HealthService
from .reflection import DescriptorIndex, reflection_services, service_descriptor

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

GRPC_WEB_TEXT = "application/grpc-web-text"
_GRPC = "application/grpc"
_GRPC_WEB = "application/grpc-web"


def standard_services(apps: list[Any], ready: Callable[[], Awaitable[bool]]) -> list[Any]:
    """Health and reflection (v1 and v1alpha) applications that know ``apps`` and themselves."""
    own = [Health.desc(), reflection_v1.ServerReflection.desc(), reflection_v1alpha.ServerReflection.desc()]
    index = DescriptorIndex([*(service_descriptor(app) for app in apps), *own])
    v1, v1alpha = reflection_services(index)
    return [HealthASGIApplication(HealthService(ready, index.service_names)),
            reflection_v1.ServerReflectionASGIApplication(v1),
            reflection_v1alpha.ServerReflectionASGIApplication(v1alpha)]


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return b""


def _decode_base64_stream(data: bytes) -> bytes:
    """Decode base64 that may be several padded pieces one after another, as gRPC-Web allows."""
    text = b"".join(data.split())
    pieces: list[bytes] = []
    start = 0
    while start < len(text):
        pad = text.find(b"=", start)
        end = len(text) if pad < 0 else min(len(text), (pad // 4 + 1) * 4)
        if end <= start:
            raise binascii.Error("misplaced padding")
        pieces.append(base64.b64decode(text[start:end], validate=True))
        start = end
    return b"".join(pieces)


def _trailers_only(status: int, message: str, content_type: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", content_type), (b"grpc-status", str(status).encode()),
            (b"grpc-message", quote(message, safe="").encode())]


class GrpcAdapter:
    """ASGI middleware for gRPC-Web text and gRPC over HTTP/1.1; everything else passes through."""

    def __init__(self, app: ASGIApp, *, grpc_port: int = 0) -> None:
        self._app = app
        self._grpc_port = grpc_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        content_type = _header(scope, b"content-type").decode("latin-1").lower()
        if content_type.startswith(GRPC_WEB_TEXT):
            await self._grpc_web_text(scope, receive, send, content_type)
            return
        is_grpc = content_type == _GRPC or content_type.startswith(_GRPC + "+")
        if is_grpc and "http.response.trailers" not in scope.get("extensions", {}):
            where = f", served on port {self._grpc_port}" if self._grpc_port else " (turned off: grpc_port = 0)"
            await _drain(receive)
            await send({"type": "http.response.start", "status": 200, "headers": _trailers_only(
                14, f"gRPC needs HTTP/2{where}; gRPC-Web works over HTTP/1.1", content_type.encode())})
            await send({"type": "http.response.body", "body": b""})
            return
        await self._app(scope, receive, send)

    async def _grpc_web_text(self, scope: Scope, receive: Receive, send: Send, content_type: str) -> None:
        codec = content_type[len(GRPC_WEB_TEXT):] or "+proto"
        binary_type = f"{_GRPC_WEB}{codec}".encode()
        headers = [(k, binary_type if k == b"content-type" else v) for k, v in scope.get("headers", ())]
        inner_scope = {**scope, "headers": headers}

        # Request messages are small and unary or server-streaming: read and decode the whole body.
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            decoded = _decode_base64_stream(bytes(body))
        except (binascii.Error, ValueError):
            await send({"type": "http.response.start", "status": 200,
                        "headers": _trailers_only(3, "request body is not base64", content_type.encode())})
            await send({"type": "http.response.body", "body": b""})
            return

        delivered = False

        async def receive_decoded() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": decoded, "more_body": False}
            return await receive()

        text_type = f"{GRPC_WEB_TEXT}{codec}".encode()

        async def send_encoded(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [
                    (k, text_type if k.lower() == b"content-type" and v.startswith(_GRPC_WEB.encode()) else v)
                    for k, v in message.get("headers", ()) if k.lower() != b"content-length"]}
            elif message["type"] == "http.response.body" and message.get("body"):
                # Each piece is padded on its own; gRPC-Web clients decode such concatenations.
                message = {**message, "body": base64.b64encode(message["body"])}
            await send(message)

        await self._app(inner_scope, receive_decoded, send_encoded)


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
