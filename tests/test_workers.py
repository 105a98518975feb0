"""Several worker processes on one port: each gets its share of new connections and of the cores
for password hashing, and a taken port is refused even when its holder would let another process
share it."""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tessera import serving
from tessera.config import ConfigError, Settings
from tessera.container import Container
from tessera.server import worker_settings

from .conftest import free_port

# Two worker processes, each answering every request with its process ID.
APP = """
import os, sys
from tessera import serving
from tessera.config import Settings

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})

def worker(listeners):
    serving.run(app, Settings(port=int(sys.argv[1]), grpc_port=0), listeners)

if __name__ == "__main__":
    serving.supervise(worker, serving.bind_each(Settings(port=int(sys.argv[1]), grpc_port=0), 2))
"""

CONNECTIONS = 64


def _answering_pid(sock: socket.socket) -> int:
    sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.split(b"\r\n\r\n", 1)[1]:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection"
        answer += chunk
    return int(answer.split(b"\r\n\r\n", 1)[1])


def _wait_until_serving(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as probe:
                _answering_pid(probe)
                return
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)


def test_a_burst_of_new_connections_is_spread_over_the_workers(tmp_path: Path) -> None:
    script = tmp_path / "two_workers.py"
    script.write_text(APP)
    port = free_port()
    process = subprocess.Popen([sys.executable, str(script), str(port)])
    try:
        _wait_until_serving(port, process)
        time.sleep(1)  # both workers up, not only the first to answer
        # All at once, as a load balancer or a benchmark opens them.
        burst = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CONNECTIONS)]
        try:
            served = collections.Counter(_answering_pid(sock) for sock in burst)
        finally:
            for sock in burst:
                sock.close()
        assert len(served) == 2, served
        # The kernel hashes each connection to a worker; an even split is 32 each, and fewer than 12
        # would happen about once in ten million bursts. One socket shared by both let one worker take most.
        assert min(served.values()) >= 12, served
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0


def test_a_port_held_by_workers_is_refused_to_more_workers_and_to_one_process() -> None:
    settings = Settings(port=free_port(), grpc_port=0)
    held = serving.bind_each(settings, 2)
    try:
        with pytest.raises(ConfigError, match="cannot listen"):
            serving.bind_each(settings, 2)
        with pytest.raises(ConfigError, match="cannot listen"):
            serving.bind(settings)
    finally:
        for listeners in held:
            listeners.close()


def test_workers_share_the_cores_out_for_password_hashing(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    shared = worker_settings(Settings(data_dir=tmp_path), 2)
    assert shared.password_hashing_threads == max(1, cores // 2)
    assert worker_settings(Settings(data_dir=tmp_path), cores * 4).password_hashing_threads == 1
    assert worker_settings(Settings(data_dir=tmp_path, password_hashing_threads=3), 2).password_hashing_threads == 3
    container = Container(shared)
    try:
        assert container.hashing.workers == shared.password_hashing_threads
    finally:
        container.close()
    one_process = Container(Settings(data_dir=tmp_path))
    try:
        assert one_process.hashing.workers == cores  # a single process hashes on every core
    finally:
        one_process.close()


def test_hashing_threads_follow_the_cpu_set_the_process_may_use() -> None:
    code = ("from tessera.crypto.passwords import threads_per_process as t;"
            "print(t(1), t(2))")
    one_core = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code],
                              capture_output=True, text=True, check=True)
    assert one_core.stdout.split() == ["1", "1"]
