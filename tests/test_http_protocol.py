"""The HTTP/1.1 listener sends each response in one write (tessera/http_protocol.py), on a real server."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ServerProcess, running_server

_TCP_INFO_DATA_SEGS_IN = 152  # offset of tcpi_data_segs_in in Linux's struct tcp_info (since 4.6)

HEALTH = (b"POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
          b"Content-Length: 2\r\n\r\n{}")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("http"), "sqlite") as server:
        yield server


def _connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _read_response(sock: socket.socket, buffered: bytearray) -> tuple[bytes, bytes]:
    """One response (head, body) with a Content-Length, from ``buffered`` and then the socket."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a full response head"
        buffered += chunk
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the full body"
        rest += chunk
    buffered[:] = rest[length:]
    return head, rest[:length]


def _data_segments_received(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("<I", info, _TCP_INFO_DATA_SEGS_IN)[0])


@pytest.mark.parametrize("request_bytes", [HEALTH, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
                                           b"GET /v2/users/me HTTP/1.1\r\nHost: t\r\n\r\n"],
                         ids=["connect", "plain", "error"])
def test_each_response_arrives_in_one_segment(srv: ServerProcess, request_bytes: bytes) -> None:
    with _connect(srv) as sock:
        buffered = bytearray()
        for _ in range(20):
            sock.sendall(request_bytes)
            head, _body = _read_response(sock, buffered)
            assert head.startswith(b"HTTP/1.1 ")
        assert _data_segments_received(sock) == 20  # head and body were one write; uvicorn alone makes two


def test_pipelined_requests_are_answered_in_order(srv: ServerProcess) -> None:
    with _connect(srv) as sock:
        sock.sendall(HEALTH + b"GET /v2/users/me HTTP/1.1\r\nHost: t\r\n\r\n" + HEALTH)
        buffered = bytearray()
        statuses = [_read_response(sock, buffered)[0].split(b" ")[1] for _ in range(3)]
        assert statuses == [b"200", b"401", b"200"]


def test_a_closing_connection_gets_its_whole_response_first(srv: ServerProcess) -> None:
    with _connect(srv) as sock:
        sock.sendall(HEALTH.replace(b"Host: t\r\n", b"Host: t\r\nConnection: close\r\n"))
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    assert json.loads(body) == {"status": "SERVING"}


def test_a_large_response_is_complete(srv: ServerProcess, tmp_path: Path) -> None:
    # Above the joining threshold (64 KiB): a listing of 20 sessions with 16 KB of metadata each.
    import httpx

    headers = {"Authorization": f"Bearer {srv.admin_pat}", "Content-Type": "application/json"}
    with httpx.Client(base_url=srv.url, headers=headers, timeout=30) as client:
        user = client.post("/v2/users/human", json={
            "username": "large-listing", "profile": {"givenName": "L", "familyName": "L"},
            "email": {"email": "large@example.com", "isVerified": True}}).json()["userId"]
        value = "x" * 4000
        for i in range(20):
            created = client.post("/v2/sessions", json={
                "checks": {"user": {"userId": user}},
                "metadata": {f"k{j}": _b64(value) for j in range(4)} | {"i": _b64(str(i))}})
            assert created.status_code == 201, created.text
        listed = client.post("/v2/sessions/search", json={
            "queries": [{"userIdQuery": {"id": user}}], "query": {"limit": 100}})
    assert listed.status_code == 200
    assert len(listed.content) > 200_000
    assert len(listed.json()["sessions"]) == 20


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()
