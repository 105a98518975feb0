"""REST: the grpc-gateway mapping of each RPC onto the same handlers.

A route names an HTTP method and path template, the handler method, the request message type,
whether the JSON body fills the request, and the success status (201 for CreateSession).
Path and query parameters are set on the request by their proto field names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from connectrpc.errors import ConnectError
from protobuf import Message

from ..errors import Code, TesseraError
from .compat import encode_response, normalize
from .errors import body_too_large, gateway_body, gateway_error, to_connect_error, undecodable
from .json_validation import check_enums

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    call: Callable[[Any, Any], Awaitable[Message]]  # bound handler method
    request_type: type[Message]
    body: bool = True
    success_status: int = 200
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


class _Headers:
    """The subset of connectrpc's RequestContext the RPC wrapper reads."""

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self._headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}

    @property
    def request_headers(self) -> dict[str, str]:
        return self._headers


class RestRouter:
    def __init__(self, routes: list[Route], max_body_bytes: int) -> None:
        self.routes = routes
        self.max_body_bytes = max_body_bytes

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """The route for (method, path), its path parameters, and whether the path exists at all."""
        path_known = False
        for route in self.routes:
            found = route.pattern.match(path)
            if found:
                path_known = True
                if route.method == method:
                    return route, found.groupdict(), True
        return None, {}, path_known

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        route, params, path_known = self.match(scope["method"], scope["path"])
        if route is None:
            if path_known:
                await respond(send, *gateway_error(Code.UNIMPLEMENTED, "API-MTH01", "Method Not Allowed"), 405)
            else:
                await respond(send, 404, json.dumps({"code": 5, "message": "Not Found", "details": []}).encode())
            return
        try:
            fields = normalize(route.request_type, await self._request_fields(route, scope, receive, params))
            # Query parameters are text, so a defined enum number may come as a string ("1").
            check_enums(route.request_type, fields, numeric_strings=True)
            request = route.request_type.from_json(json.dumps(fields), ignore_unknown_fields=True)
        except _BodyTooLarge:
            await respond(send, *gateway_body(to_connect_error(body_too_large(self.max_body_bytes))))
            return
        except TesseraError as exc:  # an unknown enum value
            await respond(send, *gateway_body(to_connect_error(exc)))
            return
        except (ValueError, TypeError, KeyError, RecursionError, OverflowError) as exc:  # Overflow: int range
            await respond(send, *gateway_body(to_connect_error(undecodable(exc))))
            return
        try:
            response = await route.call(request, _Headers(scope.get("headers", ())))
            body = encode_response(_json_bytes, response)
        except ConnectError as error:
            await respond(send, *gateway_body(error))
            return
        await respond(send, route.success_status, body)

    async def _request_fields(self, route: Route, scope: dict[str, Any], receive: Receive,
                              params: dict[str, str]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        raw = await _read_body(receive, self.max_body_bytes)
        if route.body and raw.strip():
            decoded = json.loads(raw)
            if not isinstance(decoded, dict):
                raise ValueError("request body must be a JSON object")
            fields.update(decoded)
        for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            _set_path(fields, key, value)
        fields.update(params)  # the path wins over body and query, as in grpc-gateway
        return fields


class _BodyTooLarge(Exception):
    pass


def _json_bytes(message: Message) -> bytes:
    return message.to_json().encode()


def _set_path(fields: dict[str, Any], dotted: str, value: str) -> None:
    """Set ``a.b.c=value`` from a query parameter into nested dicts."""
    *parents, leaf = dotted.split(".")
    target = fields
    for name in parents:
        nested = target.setdefault(name, {})
        if not isinstance(nested, dict):
            raise ValueError(f"query parameter {dotted!r} conflicts with the body")
        target = nested
    target[leaf] = value


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def respond(send: Send, status: int, body: bytes, override_status: int | None = None) -> None:
    await send({
        "type": "http.response.start",
        "status": override_status or status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
