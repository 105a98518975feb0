"""How a serving process treats its own memory, checked in a real process running serving.run."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from .conftest import free_port

# An ASGI app that answers how many objects the garbage collector has been told to leave alone.
APP = """
import gc, sys
from tessera import serving
from tessera.config import Settings

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = str(gc.get_freeze_count()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})

settings = Settings(port=int(sys.argv[1]), grpc_port=0)
serving.run(app, settings, serving.bind(settings))
"""


def test_what_start_up_built_is_frozen_before_serving() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", APP, str(port)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        # Full collections skip frozen objects: the modules, the app and everything start-up made.
        assert int(answer.text) > 10_000
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0
