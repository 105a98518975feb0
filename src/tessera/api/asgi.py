"""The top-level ASGI application: dispatches to Connect services, REST, OAuth and health."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .rest import Receive, RestRouter, Send

ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


class ConnectApp:
    """What Tessera needs of a connectrpc ASGI application."""

    path: str

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None: ...


class TesseraApp:
    def __init__(
        self,
        connect_apps: list[Any],
        rest: RestRouter,
        *,
        ready: Callable[[], Awaitable[bool]],
        extra_routes: Mapping[str, ASGIApp] | None = None,
        on_shutdown: Callable[[], None] | None = None,
    ) -> None:
        self._services: dict[str, Any] = {app.path: app for app in connect_apps}
        self._rest = rest
        self._ready = ready
        self._extra = dict(extra_routes or {})
        self._on_shutdown = on_shutdown

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
            await service(scope, receive, send)
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
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._on_shutdown is not None:
                    self._on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]})
    await send({"type": "http.response.body", "body": raw})
