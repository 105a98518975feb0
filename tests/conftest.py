"""Shared fixtures: throwaway PostgreSQL databases and real Tessera server processes."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
import pytest

from tessera.config import Settings
from tessera.container import Container

# httpx.get(), httpx.post() and the other top-level calls build a new Client per request, and each new
# Client loads the CA bundle into a new SSL context: ~35 ms of CPU per request, minutes over the suite.
# The tests use them for plain HTTP to 127.0.0.1, so they share one SSL context, made as httpx makes its
# own; each call still gets its own client and connection, as before. An explicit ``verify`` still wins.
_SSL_CONTEXT = httpx.create_ssl_context()


def _sharing_ssl_context(call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    def with_shared_context(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("verify", _SSL_CONTEXT)
        return call(*args, **kwargs)

    return with_shared_context


for _name in ("request", "stream", "get", "options", "head", "post", "put", "patch", "delete"):
    setattr(httpx, _name, _sharing_ssl_context(getattr(httpx, _name)))

PG_ADMIN_DSN = os.environ.get("TESSERA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["sqlite", "postgres"]


# ---- parallel runs (pytest-xdist) ----------------------------------------------------------------------
#
# ./run-tests runs the suite on several worker processes with ``--dist loadfile --no-loadscope-reorder``:
# every test file is one unit of work, so its module-scoped servers start once, on one worker. (Not
# ``loadgroup``: with pytest 9.2, xdist 3.8 silently ignores ``xdist_group`` marks, pytest-xdist#1386.)
#
# Files are handed out longest first, so that no long file starts last while the other worker idles.
# A test marked ``exclusive`` runs with no other test running on any worker: it measures load or
# throughput and must have the machine to itself. Workers take a shared lock around each test (setup,
# call and teardown, so module-scoped servers start and stop inside it too); an exclusive test takes it
# exclusively. A turnstile lock in front keeps the exclusive test from waiting forever while the
# other worker takes the shared lock test after test.

# The longest files (seconds of a serial run on 2 cores, November 2026), longest first; others follow
# in collection order. The exclusive benchmark goes first: while it runs, the other worker waits.
LONG_FIRST = (
    "tests/bench/test_bench_quick.py",  # 62, exclusive
    "tests/reliability/test_attacks.py",  # 71
    "tests/store/test_contract.py",  # 52
    "tests/reliability/test_load.py",  # 51
    "tests/lifecycle/test_lockout_and_revocation.py",  # 46
    "tests/reliability/test_fuzz.py",  # 42
    "tests/reliability/test_authz_matrix.py",  # 37
    "tests/oauth/test_security.py",  # 35
    "tests/lifecycle/test_bearer_and_mfa.py",  # 29
    "tests/sessions/test_load_and_input.py",  # 26
    "tests/reliability/test_faults.py",  # 23
    "tests/grpc/test_grpc_server.py",  # 23
    "tests/oauth/test_introspection_revocation.py",  # 22
    "tests/oauth/test_endpoints.py",  # 22
    "tests/test_bootstrap.py",  # 19
)


def _file_rank(nodeid: str) -> int:
    for rank, prefix in enumerate(LONG_FIRST):
        if nodeid.startswith(prefix):
            return rank
    return len(LONG_FIRST)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "exclusive: run with no other test at the same time (parallel runs)")


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _is_worker(config):
        items.sort(key=lambda item: _file_rank(item.nodeid))  # stable: files stay whole and in order


_locks: dict[str, IO[bytes]] = {}


def _lock_file(config: pytest.Config, name: str) -> IO[bytes]:
    if name not in _locks:
        # Each worker's basetemp is <the run's basetemp>/gwN: the parent is this run's alone.
        _locks[name] = (Path(config.option.basetemp).parent / f"{name}.lock").open("ab")
    return _locks[name]


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outermost: waiting for the lock is not test time
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if not _is_worker(item.config):
        yield
        return
    turnstile, tests = _lock_file(item.config, "turnstile"), _lock_file(item.config, "tests")
    exclusive = item.get_closest_marker("exclusive") is not None
    fcntl.flock(turnstile, fcntl.LOCK_EX)
    fcntl.flock(tests, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    if not exclusive:
        fcntl.flock(turnstile, fcntl.LOCK_UN)
    try:
        yield
    finally:
        fcntl.flock(tests, fcntl.LOCK_UN)
        if exclusive:
            fcntl.flock(turnstile, fcntl.LOCK_UN)


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


@contextlib.contextmanager
def migrated_container(database_url: str, data_dir: Path) -> Iterator[Container]:
    """Tessera's services in this process on a migrated database, with cheap password hashing."""
    c = Container(Settings(database_url=database_url, data_dir=data_dir, password_memory_kib=1024,
                           password_time_cost=1))
    c.migrate()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def container(database_url: str, tmp_path: Path) -> Iterator[Container]:
    """In-process services on an empty, migrated database of each backend (contract tests)."""
    with migrated_container(database_url, tmp_path) as c:
        yield c


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend, for in-process (contract) tests."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tessera.db'}"
    else:
        with throwaway_pg_database() as url:
            yield url
