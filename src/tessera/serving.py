"""One ASGI application on two listeners in one event loop: uvicorn for HTTP/1.1, hypercorn for gRPC.

uvicorn (httptools) answers HTTP/1.1 on the main port: Connect, REST, gRPC-Web and OAuth. It has
no HTTP/2, which gRPC needs, so hypercorn serves the same application on the gRPC port (HTTP/2
with prior knowledge, as gRPC clients connect in cleartext, or TLS with ALPN ``h2``; HTTP/1.1
works there too). Both servers share the process, the event loop and the application, and the
application's lifespan runs once around both.

With several workers the parent binds the ports once per worker (``SO_REUSEPORT``) and hands each
worker process its own pair of sockets; the kernel spreads new connections evenly over them. (One
socket shared by all workers lets whichever worker wakes first accept a whole burst of connections,
and the others idle.) A restarted worker takes over its predecessor's sockets and their backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import hypercorn.asyncio
import hypercorn.config
import uvicorn
import uvloop

from .config import ConfigError, Settings
from .http_protocol import JoinedWritesHttpToolsProtocol

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]],
                    Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]

log = logging.getLogger("tessera.server")

# A worker that dies sooner than this after starting is failing to start, not crashing in service;
# restarting it would only loop.
_STARTUP_GRACE_SECONDS = 10.0
_STOP_TIMEOUT_SECONDS = 30.0


@dataclass
class Listeners:
    """The bound, listening sockets of one Tessera instance."""

    http: socket.socket
    grpc: socket.socket | None

    def close(self) -> None:
        self.http.close()
        if self.grpc is not None:
            self.grpc.close()


def _listen(host: str, port: int, *, shared_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared_port:
        # Only sockets of the same user may share a port this way, so no other account can join in.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    # Listening before any worker runs lets early connections wait in the backlog.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def bind(settings: Settings) -> Listeners:
    """Bind the HTTP port and, unless it is turned off, the gRPC port; check the TLS files."""
    return bind_each(settings, 1)[0]


def bind_each(settings: Settings, workers: int) -> list[Listeners]:
    """``workers`` pairs of listening sockets on the same ports, one pair per worker process."""
    if settings.grpc_tls_cert:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                settings.grpc_tls_cert, settings.grpc_tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"grpc_tls_cert/grpc_tls_key: cannot load: {exc}") from None
    if workers > 1:
        _check_free(settings.host, settings.port)
        if settings.effective_grpc_port:
            _check_free(settings.host, settings.effective_grpc_port)
    bound: list[Listeners] = []
    try:
        for _ in range(workers):
            http = _listen(settings.host, settings.port, shared_port=workers > 1)
            bound.append(Listeners(http, None))
            if settings.effective_grpc_port:
                bound[-1].grpc = _listen(settings.host, settings.effective_grpc_port, shared_port=workers > 1)
    except ConfigError:
        for listeners in bound:
            listeners.close()
        raise
    return bound


def _check_free(host: str, port: int) -> None:
    """Refuse a port that is taken, even by sockets that would let ours share it (another Tessera
    started with ``--workers``): binding it without ``SO_REUSEPORT`` succeeds only if it is free."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


class _HTTPServer(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve_listeners`` stops both servers together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _without_lifespan(app: ASGIApp) -> ASGIApp:
    """The app for the second server: its lifespan already runs once, around both servers."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return wrapped


@contextlib.asynccontextmanager
async def _lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run the ASGI lifespan protocol: startup before serving, shutdown after both servers stopped."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    async def run_app() -> None:
        await app(scope, inbox.get, outbox.put)

    task = asyncio.create_task(run_app())

    async def step(kind: str) -> None:
        await inbox.put({"type": f"lifespan.{kind}"})
        reply = asyncio.create_task(outbox.get())
        await asyncio.wait({reply, task}, return_when=asyncio.FIRST_COMPLETED)
        if not reply.done():
            reply.cancel()
            task.result()  # raises what the app raised
            raise RuntimeError(f"the application ended its lifespan during {kind}")
        message = reply.result()
        if message["type"] != f"lifespan.{kind}.complete":
            raise RuntimeError(f"lifespan {kind} failed: {message.get('message', '')}")

    await step("startup")
    try:
        yield
    finally:
        await step("shutdown")
        await task


def _hypercorn_config(settings: Settings, sock: socket.socket) -> hypercorn.config.Config:
    config = hypercorn.config.Config()
    config.bind = [f"fd://{os.dup(sock.fileno())}"]
    if settings.grpc_tls_cert:
        config.certfile = settings.grpc_tls_cert
        config.keyfile = settings.grpc_tls_key
    config.loglevel = settings.log_level.upper()
    config.errorlog = logging.getLogger("uvicorn.error")  # one log format for both servers
    config.backlog = 2048
    config.include_server_header = False
    # gRPC clients keep one connection open for a long time and send many calls on it; they
    # cope with GOAWAY, but there is no reason to make them reconnect often.
    config.keep_alive_timeout = 3600
    config.keep_alive_max_requests = 10_000_000
    config.graceful_timeout = 5
    return config


async def serve_listeners(app: ASGIApp, settings: Settings, listeners: Listeners) -> None:
    """Serve ``app`` on both listeners until SIGINT or SIGTERM, then drain both and shut down."""
    http = _HTTPServer(uvicorn.Config(
        app, http=JoinedWritesHttpToolsProtocol, lifespan="off", log_level=settings.log_level, access_log=False))
    grpc_stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if http.should_exit:
            http.force_exit = True  # a second signal: stop waiting for open connections
        http.should_exit = True
        grpc_stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)

    async def run_http() -> None:
        try:
            await http.serve(sockets=[listeners.http])
        finally:
            grpc_stop.set()

    async def run_grpc(sock: socket.socket) -> None:
        try:
            await hypercorn.asyncio.serve(_without_lifespan(app), _hypercorn_config(settings, sock),  # type: ignore[arg-type]
                                          shutdown_trigger=grpc_stop.wait, mode="asgi")
        finally:
            http.should_exit = True

    try:
        async with _lifespan(app):
            # What start-up built lives as long as the process. Left in the collector's care, every full
            # collection walked it all and held the loop for 50-60 ms, the p99 of a write under load.
            gc.freeze()
            jobs = [run_http()] + ([run_grpc(listeners.grpc)] if listeners.grpc is not None else [])
            await asyncio.gather(*jobs)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def run(app: ASGIApp, settings: Settings, listeners: Listeners) -> None:
    """Serve in this process, on uvloop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_listeners(app, settings, listeners))


WorkerTarget = Callable[[Listeners], None]


def supervise(target: WorkerTarget, listeners: list[Listeners]) -> None:
    """Run ``target(listeners[i])`` in one process per entry; restart any that die (on the same sockets);
    stop all on a signal."""
    spawn = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def start(index: int) -> tuple[multiprocessing.process.BaseProcess, float]:
        process = spawn.Process(target=target, args=(listeners[index],), daemon=False)
        process.start()
        return process, time.monotonic()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    running = [start(index) for index in range(len(listeners))]
    failed = False
    try:
        while not stopping.wait(0.5):
            for index, (process, started) in enumerate(running):
                if process.is_alive():
                    continue
                if time.monotonic() - started < _STARTUP_GRACE_SECONDS:
                    log.error("worker %s exited during startup (code %s); stopping", process.pid, process.exitcode)
                    failed = True
                    stopping.set()
                    break
                log.warning("worker %s exited (code %s); starting another", process.pid, process.exitcode)
                running[index] = start(index)
    finally:
        for process, _ in running:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_SECONDS
        for process, _ in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for s, handler in previous.items():
            signal.signal(s, handler)
        for pair in listeners:
            pair.close()
    if failed:
        sys.exit(1)
