"""The top-level ASGI application: dispatches to Connect services, REST, OAuth and health."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from .errors import body_too_large, to_connect_error
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
        if service is not None:
            await service(scope, _limited(receive, self._rest.max_body_bytes), send)
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


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]})
    await send({"type": "http.response.body", "body": raw})
