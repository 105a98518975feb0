"""CORS for browser clients (gRPC-Web, Connect, REST) from the origins in ``cors_origins``.

A preflight (OPTIONS with Access-Control-Request-Method) from an allowed origin is answered
here; other requests from an allowed origin get the CORS headers added to whatever the
application answers, including the gRPC status headers that a browser script must be allowed to
read. Credentials are bearer tokens in the Authorization header, so cookies are never allowed.
Requests without an Origin, or from origins not listed, pass through untouched (a browser then
refuses to hand the answer to the page).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
# What browser clients send (Connect, gRPC-Web, REST); a preflight asking for others is answered
# with the headers it asked for, since the origin is trusted anyway.
ALLOW_HEADERS = (b"authorization, content-type, accept, accept-encoding, connect-protocol-version, "
                 b"connect-timeout-ms, grpc-timeout, x-grpc-web, x-user-agent, x-zitadel-orgid")
EXPOSE_HEADERS = (b"grpc-status, grpc-message, grpc-status-details-bin, grpc-encoding, grpc-accept-encoding, "
                  b"connect-content-encoding, connect-accept-encoding, content-encoding, location")
MAX_AGE = b"7200"


class CORSMiddleware:
    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self._app = app
        listed = {o.strip().rstrip("/") for o in origins if o.strip()}
        self._any = "*" in listed
        self._origins = {o.encode() for o in listed if o != "*"}

    def allows(self, origin: bytes) -> bool:
        return bool(origin) and (self._any or origin.rstrip(b"/") in self._origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        origin = request_method = request_headers = b""
        for key, value in scope.get("headers", ()):
            if key == b"origin":
                origin = value
            elif key == b"access-control-request-method":
                request_method = value
            elif key == b"access-control-request-headers":
                request_headers = value
        if not origin:
            await self._app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and request_method:
            await self._preflight(send, origin, request_headers)
            return
        if not self.allows(origin):
            await self._app(scope, receive, send)
            return

        async def send_with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ())
                           if k.lower() not in (b"access-control-allow-origin", b"access-control-expose-headers")]
                headers += [(b"access-control-allow-origin", origin),
                            (b"access-control-expose-headers", EXPOSE_HEADERS), (b"vary", b"Origin")]
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, send_with_cors)

    async def _preflight(self, send: Send, origin: bytes, request_headers: bytes) -> None:
        if not self.allows(origin):
            body = b"origin not allowed by cors_origins"
            await send({"type": "http.response.start", "status": 403, "headers": [
                (b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()),
                (b"vary", b"Origin")]})
            await send({"type": "http.response.body", "body": body})
            return
        allow_headers = request_headers.strip() or ALLOW_HEADERS
        await send({"type": "http.response.start", "status": 204, "headers": [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", ALLOW_METHODS),
            (b"access-control-allow-headers", allow_headers),
            (b"access-control-max-age", MAX_AGE),
            (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        ]})
        await send({"type": "http.response.body", "body": b""})
