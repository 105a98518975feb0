"""Shared fixtures: throwaway PostgreSQL databases and real Tessera server processes."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

PG_ADMIN_DSN = os.environ.get("TESSERA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["sqlite", "postgres"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def throwaway_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"tessera_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class ServerProcess:
    """A real ``tessera serve`` process on a free loopback port."""

    data_dir: Path
    database_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)  # gRPC over HTTP/2 (h2c)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def admin_pat(self) -> str:
        return (self.data_dir / "admin.pat").read_text().strip()

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        env = {**os.environ, "TESSERA_DATA_DIR": str(self.data_dir), "TESSERA_PORT": str(self.port),
               "TESSERA_GRPC_PORT": str(self.grpc_port),
               "TESSERA_HOST": "127.0.0.1", "TESSERA_LOG_LEVEL": "warning",
               # cheap password hashing keeps the suite fast; production defaults are OWASP's
               "TESSERA_PASSWORD_MEMORY_KIB": "1024", "TESSERA_PASSWORD_TIME_COST": "1", **self.extra_env}
        if self.database_url:
            env["TESSERA_DATABASE_URL"] = self.database_url
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tessera", "serve", *self.extra_args], env=env, stdout=log, stderr=log,
            cwd=str(self.data_dir.parent))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""


@contextlib.contextmanager
def running_server(tmp: Path, backend: str, **kwargs: object) -> Iterator[ServerProcess]:
    data_dir = tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(throwaway_pg_database()) if backend == "postgres" else ""
        server = ServerProcess(data_dir=data_dir, database_url=url, **kwargs).start()  # type: ignore[arg-type]
        stack.callback(server.stop)
        yield server


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module and backend."""
    with running_server(tmp_path_factory.mktemp(f"srv-{request.param}"), request.param) as srv:
        yield srv


@pytest.fixture(scope="module")
def sdk(server: ServerProcess):  # type: ignore[no-untyped-def]
    """The official Python SDK, authenticated with the admin PAT."""
    import zitadel_client

    return zitadel_client.Zitadel.with_access_token(server.url, server.admin_pat)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend, for in-process (contract) tests."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tessera.db'}"
    else:
        with throwaway_pg_database() as url:
            yield url
