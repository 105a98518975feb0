"""The common Connect call, served without connectrpc's per-request machinery.

connectrpc prepares every request for everything Connect allows: deadlines (a timer per request),
a task watching for the client to disconnect, interceptors, streaming, GET requests and compressed
request bodies. Most calls need none of it: a unary call, POSTed, with an uncompressed JSON or binary
body and no deadline header. For those, that machinery cost about as much as the handler (bench/).

This module answers exactly those calls, with connectrpc's own building blocks (the same codecs,
endpoints, response compression and error encoding), so both paths answer alike; every other request
goes to connectrpc unchanged. Answers carry a Content-Length, so they need no chunked framing.
tests/interop/test_connect_paths.py sends the same requests both ways and compares the answers byte
for byte.

Without a disconnect watch, a handler runs to its end even if its client went away; since every
handler here is short and a write's outcome does not depend on whether the answer arrives, that is
the same result as a disconnect just after the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from connectrpc._compression import negotiate_compression
from connectrpc._protocol import ConnectWireError
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import Headers

log = logging.getLogger("tessera.api")

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_CONTENT_TYPES = {b"application/json": "json", b"application/proto": "proto"}
# Headers that need what only connectrpc does (a deadline, a compressed body, another protocol version).
_DECLINE = {b"connect-timeout-ms", b"content-encoding", b"connect-protocol-version"}


class _Context:
    """What handlers read of connectrpc's RequestContext: the request headers."""

    __slots__ = ("request_headers",)

    def __init__(self, headers: Headers) -> None:
        self.request_headers = headers


class _Route:
    __slots__ = ("codecs", "compressions", "function", "input")

    def __init__(self, function: Callable[[Any, Any], Awaitable[Any]], input_type: type[Any],
                 codecs: Mapping[str, Any], compressions: dict[str, Any]) -> None:
        self.function = function
        self.input = input_type
        self.codecs = codecs
        self.compressions = compressions


class ConnectUnary:
    def __init__(self, apps: Iterable[Any]) -> None:
        self._routes: dict[str, _Route] = {}
        for app in apps:
            # connectrpc keeps its endpoints, codecs and compressions private; the versions are pinned, and
            # the comparison tests fail if they ever change meaning.
            for path, endpoint in app._endpoints(app._service).items():
                if endpoint.method.stream_type.name == "UNARY":
                    self._routes[path] = _Route(endpoint.function, endpoint.method.input, app._codecs,
                                                app._compressions)

    def takes(self, scope: dict[str, Any]) -> tuple[_Route, Any] | None:
        """The route and codec when this path can answer the request; None for connectrpc."""
        if scope["method"] != "POST":
            return None
        route = self._routes.get(scope["path"])
        if route is None:
            return None
        codec_name = None
        for key, value in scope["headers"]:
            if key == b"content-type":
                codec_name = _CONTENT_TYPES.get(value)
            elif key in _DECLINE and not (key == b"connect-protocol-version" and value == b"1"):
                return None
        codec = route.codecs.get(codec_name) if codec_name else None
        return (route, codec) if codec is not None else None

    async def __call__(self, route: _Route, codec: Any, scope: dict[str, Any], receive: Receive,
                       send: Send) -> None:
        headers = Headers()
        for key, value in scope["headers"]:
            headers.add(key.decode(), value.decode())
        try:
            body = await _read_body(receive)
            try:
                request = codec.decode(body, route.input)
            except ConnectError:
                raise
            except Exception as exc:  # as connectrpc reports an undecodable message
                raise ConnectError(Code.INVALID_ARGUMENT, f"unmarshal message: {exc}") from exc
            response = await route.function(request, _Context(headers))
            compression = negotiate_compression(headers.get("accept-encoding", ""), route.compressions)
            payload = compression.compress(codec.encode(response))
        except Exception as exc:  # every failure becomes the Connect error answer
            await _send_error(send, exc)
            if not isinstance(exc, ConnectError):
                log.error("unexpected error in %s", scope["path"], exc_info=exc)
            return
        await send({"type": "http.response.start", "status": 200, "trailers": False, "headers": [
            (b"content-type", b"application/" + codec.name().encode()),
            (b"content-encoding", compression.name().encode()),
            (b"vary", b"Accept-Encoding"),
            (b"content-length", b"%d" % len(payload))]})
        await send({"type": "http.response.body", "body": payload, "more_body": False})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_error(send: Send, exc: Exception) -> None:
    wire = ConnectWireError.from_exception(exc)
    body = wire.to_json_bytes()
    await send({"type": "http.response.start", "status": wire.to_http_status().code, "trailers": False,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body, "more_body": False})
