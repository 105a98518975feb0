"""In-process checks of the gRPC settings, the gRPC-Web text decoding and the CORS middleware."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from tessera.api.cors import CORSMiddleware
from tessera.api.grpc import _decode_base64_stream
from tessera.config import ConfigError, load_settings


def test_grpc_port_defaults_to_the_next_port_and_zero_turns_it_off() -> None:
    assert load_settings(environ={}).effective_grpc_port == 8081
    assert load_settings({"port": 9000}, environ={}).effective_grpc_port == 9001
    assert load_settings(environ={"TESSERA_GRPC_PORT": "50051"}).effective_grpc_port == 50051
    assert load_settings(environ={"TESSERA_GRPC_PORT": "0"}).effective_grpc_port == 0


@pytest.mark.parametrize("env", [
    {"TESSERA_GRPC_PORT": "8080"},
    {"TESSERA_GRPC_PORT": "70000"},
    {"TESSERA_PORT": "65535"},  # port + 1 is no port
    {"TESSERA_GRPC_TLS_CERT": "/etc/cert.pem"},  # a certificate without its key
])
def test_unusable_grpc_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_settings(environ=env)


def test_cors_origins_are_a_comma_separated_list() -> None:
    settings = load_settings(environ={"TESSERA_CORS_ORIGINS": " https://a.example/ ,http://localhost:3000,, "})
    assert settings.cors_origin_list == ["https://a.example", "http://localhost:3000"]


def test_grpc_web_text_bodies_may_be_several_padded_pieces() -> None:
    pieces = [b"\x00\x00\x00\x00\x01a", b"xy", b"\x80\x00\x00\x00\x00"]
    joined = b"".join(base64.b64encode(p) for p in pieces)
    assert b"=" in joined[:-2]  # padding inside the text, not only at its end
    assert _decode_base64_stream(joined) == b"".join(pieces)
    assert _decode_base64_stream(base64.b64encode(b"".join(pieces)) + b"\r\n") == b"".join(pieces)


def _run(app: Any, method: str, headers: dict[str, str]) -> dict[str, Any]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": "/x",
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return {"status": start["status"], **{k.decode(): v.decode() for k, v in start["headers"]}}


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_cors_wildcard_allows_any_origin_and_echoes_it() -> None:
    app = CORSMiddleware(_ok, ["*"])
    answer = _run(app, "POST", {"origin": "https://anywhere.example"})
    assert answer["access-control-allow-origin"] == "https://anywhere.example"
    preflight = _run(app, "OPTIONS", {"origin": "https://anywhere.example", "access-control-request-method": "POST"})
    assert preflight["status"] == 204 and "x-grpc-web" in preflight["access-control-allow-headers"]


def test_requests_without_origin_pass_through_untouched() -> None:
    answer = _run(CORSMiddleware(_ok, ["https://a.example"]), "POST", {})
    assert answer == {"status": 200, "content-type": "text/plain"}
