"""Shared pieces of the reliability and security suite.

- the catalogue of every RPC Tessera serves, read from the generated service descriptors, and the
  REST route of each (read from the application itself), so that a new RPC shows up here alone;
- the checks every hostile request must pass: no 5xx, no Python or SQL text in the body;
- database access from the test process (counts for "no partial write", events, integrity);
- small HTTP helpers and budgets (``TESSERA_FUZZ_EXAMPLES``, ``TESSERA_SOAK_SECONDS``).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, text

import tessera.gen.zitadel
from tessera.config import Settings

from ..conftest import ServerProcess, free_port

# ---- budgets ----------------------------------------------------------------------------------------


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def long_run() -> bool:
    """True when a larger budget was asked for; CI runs the bounded versions."""
    return bool(os.environ.get("TESSERA_FUZZ_EXAMPLES") or os.environ.get("TESSERA_SOAK_SECONDS"))


# ---- the RPC catalogue ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rpc:
    service: str  # e.g. zitadel.session.v2.SessionService
    method: str  # e.g. CreateSession
    request_type: Any  # the protobuf-py message class

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.method}"

    @property
    def short_service(self) -> str:
        return self.service.rsplit(".", 1)[-1]

    def __str__(self) -> str:
        return f"{self.short_service}.{self.method}"


@cache
def all_rpcs() -> tuple[Rpc, ...]:
    """Every unary RPC of every zitadel.* service in the generated code, from its descriptor."""
    found: dict[str, Rpc] = {}
    for module_info in pkgutil.walk_packages(tessera.gen.zitadel.__path__, "tessera.gen.zitadel."):
        if not module_info.name.endswith("_connect"):
            continue
        module = importlib.import_module(module_info.name)
        pb_module = importlib.import_module(module_info.name.removesuffix("_connect") + "_pb")
        for value in vars(module).values():
            desc = getattr(value, "desc", None)
            if not (isinstance(value, type) and callable(desc) and value.__module__ == module.__name__):
                continue
            try:
                service = desc()
            except TypeError:
                continue
            if not hasattr(service, "methods"):
                continue
            for method in service.methods:
                request_type = getattr(pb_module, method.input.name, None)
                if request_type is None:  # an input message from another file
                    request_type = _message_class(method.input)
                rpc = Rpc(service.type_name, method.name, request_type)
                found[rpc.path] = rpc
    return tuple(sorted(found.values(), key=lambda r: r.path))


def _message_class(desc: Any) -> Any:
    module = importlib.import_module("tessera.gen." + desc.file.name.removesuffix(".proto").replace("/", ".") + "_pb")
    return getattr(module, desc.name)


@dataclass(frozen=True)
class RestRoute:
    method: str
    template: str
    request_type: Any
    body: bool
    success_status: int

    def url(self, **params: str) -> str:
        path = self.template
        for name, value in params.items():
            path = path.replace("{" + name + "}", value)
        return path

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.template)


@cache
def rest_routes() -> dict[str, RestRoute]:
    """The REST route of each RPC, keyed by request message name, from the application itself."""
    from tessera.app import build_app
    from tessera.container import Container

    scratch = Path(tempfile.mkdtemp(prefix="tessera-routes-"))
    container = Container(Settings(data_dir=scratch))
    try:
        app = build_app(container)
        routes = app._rest.routes
        return {r.request_type.__name__: RestRoute(r.method, r.template, r.request_type, r.body, r.success_status)
                for r in routes}
    finally:
        container.close()
        shutil.rmtree(scratch, ignore_errors=True)


def rest_route_of(rpc: Rpc) -> RestRoute | None:
    return rest_routes().get(rpc.request_type.__name__)


# ---- what every answer to hostile input must look like --------------------------------------------------

# Interpreter, driver and framework text that must never reach a client.
LEAK_PATTERNS = re.compile(
    r"Traceback|File \"|<class '|NoneType|object has no attribute|object is not|codec can't|maximum recursion"
    r"|sqlalchemy|psycopg|sqlite3|OperationalError|IntegrityError|DataError|ProgrammingError|KeyError"
    r"|IndexError|AttributeError|AssertionError|RuntimeError|ZeroDivision|unexpected keyword"
    r"|positional argument|SELECT |INSERT |UPDATE |DELETE FROM|\(Background on this error",
    re.IGNORECASE)


def leaked_text(body: str) -> str | None:
    found = LEAK_PATTERNS.search(body)
    return found.group(0) if found else None


def connect_code(response: httpx.Response) -> str:
    """The Connect (or grpc-gateway numeric) error code of a failed answer, '' for success."""
    if response.status_code < 300:
        return ""
    try:
        body = response.json()
    except ValueError:
        return f"http-{response.status_code}"
    code = body.get("code", "") if isinstance(body, dict) else ""
    return str(code)


# ---- database access from the test process ----------------------------------------------------------------


def db_url(server: ServerProcess) -> str:
    return server.database_url or f"sqlite:///{server.data_dir / 'tessera.db'}"


class Db:
    """One engine on the server's database, for counts and checks between requests."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(url, pool_pre_ping=True)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def scalar(self, sql: str, **params: Any) -> Any:
        return self.rows(sql, **params)[0][0]

    def close(self) -> None:
        self.engine.dispose()


# User-side bookkeeping that a failing credential check writes on purpose (ZITADEL does the same):
# failed-attempt counters, the lock that the limit triggers, and a success that an earlier check
# of the same failing request recorded.
BOOKKEEPING_EVENTS = ("user.human.password.check.failed", "user.human.password.check.succeeded",
                      "user.human.otp.check.failed", "user.human.otp.check.succeeded", "user.locked")


def write_fingerprint(db: Db) -> tuple[int, ...]:
    """Counts that any write but failure bookkeeping changes; equal before and after a failed request."""
    kinds = ", ".join(f"'{k}'" for k in BOOKKEEPING_EVENTS)
    return tuple(db.rows(
        "SELECT (SELECT count(*) FROM sessions), (SELECT coalesce(sum(sequence), 0) FROM sessions),"
        " (SELECT count(*) FROM users), (SELECT count(*) FROM organizations),"
        " (SELECT count(*) FROM personal_access_tokens), (SELECT count(*) FROM memberships),"
        f" (SELECT count(*) FROM events WHERE type NOT IN ({kinds}))")[0])


def session_events(db: Db) -> dict[str, list[tuple[int, str]]]:
    """(sequence, type) of every session event, by session ID, in sequence order."""
    events: dict[str, list[tuple[int, str]]] = {}
    for aggregate_id, sequence, kind in db.rows(
            "SELECT aggregate_id, sequence, type FROM events WHERE aggregate_type = 'session'"
            " ORDER BY aggregate_id, sequence"):
        events.setdefault(str(aggregate_id), []).append((int(sequence), str(kind)))
    return events


# ---- HTTP ----------------------------------------------------------------------------------------------------


def post_connect(client: httpx.Client, server: ServerProcess, rpc: Rpc, body: Any, token: str | None,
                 *, timeout: float = 30) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return client.post(server.url + rpc.path, json=body, headers=headers, timeout=timeout)


# ---- a private PostgreSQL cluster that a test may stop and start ------------------------------------------------


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster on its own port, owned by the ``postgres`` OS user.

    Restarting the shared cluster would break tests that run at the same moment, so tests that
    take PostgreSQL down use one of these instead.
    """

    directory: Path
    bin_dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin_dir / "pg_ctl"), "-D",
                        str(self.directory / "data"), *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
                   " -c max_connections=60")
        self._pg_ctl("-o", options, "-l", str(self.directory / "log"), "-w", "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")

    def is_ready(self) -> bool:
        done = subprocess.run([str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                              check=False, timeout=10)
        return done.returncode == 0


def _postgres_bin_dir() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    return None


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """Yields a running private cluster; raises RuntimeError when one cannot be made here."""
    bin_dir = _postgres_bin_dir()
    if bin_dir is None or os.geteuid() != 0 or shutil.which("runuser") is None:
        raise RuntimeError("needs root, runuser and PostgreSQL's initdb")
    directory = Path(tempfile.mkdtemp(prefix="tessera-pg-"))
    shutil.chown(directory, "postgres", "postgres")
    cluster = PrivatePostgres(directory, bin_dir, free_port())
    try:
        subprocess.run(["runuser", "-u", "postgres", "--", str(bin_dir / "initdb"), "-D", str(directory / "data"),
                        "-A", "trust", "-U", "postgres", "--no-sync"], check=True, capture_output=True, timeout=120)
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


def wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
