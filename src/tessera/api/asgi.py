"""The top-level ASGI application: dispatches to Connect services, REST, OAuth and health."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from ..errors import TesseraError, invalid_argument, unauthenticated
from ..gen.zitadel.message_pb import ErrorDetail
from .connect_unary import ConnectUnary
from .errors import body_too_large, gateway_body, to_connect_error
from .rest import Receive, RestRouter, Send

ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


class TesseraApp:
    def __init__(
        self,
        connect_apps: list[Any],
        rest: RestRouter,
        *,
        ready: Callable[[], Awaitable[bool]],
        extra_routes: Mapping[str, ASGIApp] | None = None,
        on_shutdown: Callable[[], None] | None = None,
        background: list[Callable[[], Coroutine[Any, Any, None]]] | None = None,
    ) -> None:
        self._services: dict[str, Any] = {app.path: app for app in connect_apps}
        self._unary = ConnectUnary(connect_apps)
        self._rest = rest
        self._ready = ready
        self._extra = dict(extra_routes or {})
        self._on_shutdown = on_shutdown
        self._background = background or []
        self._tasks: list[asyncio.Task[None]] = []

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        path: str = scope["path"]
        if path == "/healthz":
            await _json(send, 200, {"status": "ok"})
            return
        if path == "/readyz":
            ok = await self._ready()
            await _json(send, 200 if ok else 503, {"status": "ok" if ok else "database unavailable"})
            return
        service = self._services.get(path.rsplit("/", 1)[0]) if path.count("/") == 2 else None
        problem = _header_problem(scope.get("headers", ()))
        if problem is not None:
            await _refuse(send, problem, connect=service is not None)
            return
        if service is not None:
            limited = _limited(receive, self._rest.max_body_bytes)
            unary = self._unary.takes(scope)
            if unary is not None:
                await self._unary(*unary, scope, limited, send)
            else:
                await service(scope, limited, send)
            return
        extra = self._extra.get(path)
        if extra is not None:
            await extra(scope, receive, send)
            return
        await self._rest(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._tasks = [asyncio.create_task(job()) for job in self._background]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._tasks:
                    task.cancel()
                if self._on_shutdown is not None:
                    self._on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that fails with API-SIZE1 once the body exceeds ``limit`` bytes.

    connectrpc renders the error in the caller's protocol, so an oversized body gets the same
    code, message and error ID on Connect, gRPC and REST.
    """
    size = 0

    async def receive_within_limit() -> dict[str, Any]:
        nonlocal size
        message = await receive()
        size += len(message.get("body", b""))
        if size > limit:
            raise to_connect_error(body_too_large(limit))
        return message

    return receive_within_limit


def _header_problem(headers: Any) -> TesseraError | None:
    """Headers no protocol adapter can use safely, refused alike on Connect, gRPC and REST.

    Two ``Authorization`` headers are ambiguous (Connect would read the first, REST the last,
    a proxy in front perhaps another), and header values that are not UTF-8 text make the
    Connect framework fail with an internal error.
    """
    authorizations = 0
    for key, value in headers:
        if key == b"authorization":
            authorizations += 1
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return invalid_argument("API-HDR01", "Request headers must be UTF-8 text")
    if authorizations > 1:
        return unauthenticated("AUTH-2auth", "Only one authorization header is allowed")
    return None


async def _refuse(send: Send, error: TesseraError, *, connect: bool) -> None:
    """Answer with ``error`` as Connect JSON (service paths) or grpc-gateway JSON (everything else)."""
    if not connect:
        status, body = gateway_body(to_connect_error(error))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    detail = ErrorDetail(id=error.error_id, message=error.text).to_binary()
    await _json(send, error.code.http_status, {
        "code": error.code.connect_name, "message": error.wire_message,
        "details": [{"type": "zitadel.v1.ErrorDetail", "value": base64.b64encode(detail).decode().rstrip("="),
                     "debug": {"id": error.error_id, "message": error.text}}]})


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]})
    await send({"type": "http.response.body", "body": raw})
