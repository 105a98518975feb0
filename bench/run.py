"""Tessera's benchmark: ZITADEL's load scenarios, the stack's ceilings and a fastapi-users peer, side by side.

    ./.venv/bin/python bench/run.py                      # full run: SQLite and PostgreSQL, 10 000 and 1 000 000
    ./.venv/bin/python bench/run.py --quick              # under two minutes: SQLite, 10 000 sessions, short runs
    ./.venv/bin/python bench/run.py --db postgres --sessions 10000,1000000 --duration 15

For every configuration (SQLite; PostgreSQL with one worker; PostgreSQL with two workers) and every
session count N, the harness creates a fresh database (PostgreSQL: a throwaway database, dropped
afterwards), initialises it with ``tessera init``, adds a template user with ``tessera users add``,
bulk-inserts copies of that user and N password-checked sessions (bench/seed.py), starts
``tessera serve``, and drives each scenario with wrk (bench/lua/*.lua) over 64 connections: a
warm-up, then a fixed measured duration. Results go to bench/results/<time>/ as results.json and
report.md; the exit status is 1 if any scenario saw an error.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import procstat  # noqa: E402
import report  # noqa: E402

PASSWORD = "Bench-Passw0rd"
PG_ADMIN_DSN = os.environ.get("TESSERA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PEER_VENV = BENCH / ".venv-peer"
SESSIONS_PER_USER = 100
READ_SET = 20_000
UPDATE_SET = 5_000

# Scenario order matters: reads first on the seeded data, then writes that add or rotate sessions.
SCENARIOS = ["noop", "token_auth", "get_session", "list_by_user", "update_session", "add_session",
             "password_session"]


@dataclass
class Options:
    dbs: list[str]
    sizes: list[int]
    duration: int
    warmup: int
    connections: int
    threads: int
    pg_workers: int
    sqlite_workers: int
    peer: bool
    scenarios: list[str]
    argon2_m: int
    argon2_t: int
    argon2_p: int
    out: Path
    quick: bool
    probe_connections: int = 4
    probe_delay_ms: int = 25
    wait_quiet: float = 0.0
    profile: bool = False


@dataclass
class ScenarioResult:
    config: str
    sessions: int
    scenario: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    iterations_per_s: float | None
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    error_detail: dict[str, int]
    server_peak_rss_mib: float
    server_cpu_pct: float  # of the whole machine (100 % = every core busy)
    load_cpu_pct: float
    other_cpu_pct: float  # the database server and everything else
    server_cpu_us_per_request: float  # the least noisy figure on a shared machine
    extra: dict[str, Any] = field(default_factory=dict)


# ---- tools -----------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def ensure_wrk() -> str:
    """wrk from Debian; installed with apt-get when missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk is missing: apt-get install -y wrk")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        done = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True, timeout=300)
        if done.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True, timeout=300)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit("error: the load generator wrk is not installed; install it with: apt-get install -y wrk")


def ensure_peer_venv() -> Path:
    """bench/.venv-peer with bench/requirements.txt (fastapi-users and its pinned dependencies)."""
    python = PEER_VENV / "bin" / "python"
    requirements = BENCH / "requirements.txt"
    stamp = PEER_VENV / ".installed"
    want = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == want:
        return python
    log("creating bench/.venv-peer (fastapi-users peer)")
    base = shutil.which("python3.11") or sys.executable
    if not python.exists():
        subprocess.run([base, "-m", "venv", str(PEER_VENV)], check=True, timeout=120)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
                    str(requirements)], check=True, timeout=600)
    stamp.write_text(want)
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 30) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Server:
    """A server process on a loopback port, stopped (with its workers) on exit."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log_path: Path, cwd: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(argv, env=env, stdout=self._log, stderr=self._log, cwd=str(cwd))
        self.pids: list[int] = []

    def wait_ready(self, path: str = "/healthz", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()[-4000:]}")
            with contextlib.suppress(OSError):
                if http("GET", self.url + path, timeout=1)[0] == 200:
                    time.sleep(0.5)  # let every worker come up
                    self.pids = procstat.tree(self.process.pid)
                    return
            time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()[-4000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                for pid in procstat.tree(self.process.pid):
                    with contextlib.suppress(OSError):
                        os.kill(pid, 9)
                self.process.wait(timeout=10)
        self._log.close()


# ---- wrk -------------------------------------------------------------------------------------


@dataclass
class Load:
    script: str
    data: Path | None
    bearer: str
    extra: list[str] = field(default_factory=list)
    connections: int = 64
    threads: int = 1


def wrk_argv(wrk: str, url: str, load: Load, seconds: float) -> list[str]:
    return [wrk, f"-t{load.threads}", f"-c{load.connections}", f"-d{seconds}s", "--timeout", "30s",
            "-s", str(BENCH / "lua" / f"{load.script}.lua"), url, "--",
            str(load.data or "-"), load.bearer or "-", str(load.threads), *load.extra]


def parse_wrk(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            return dict(json.loads(line[len("BENCH_JSON "):]))
    raise RuntimeError(f"wrk printed no summary:\n{output[-3000:]}")


def run_wrk(wrk: str, url: str, load: Load, seconds: float) -> dict[str, Any]:
    env = {**os.environ, "BENCH_LUA_DIR": str(BENCH / "lua")}
    done = subprocess.run(wrk_argv(wrk, url, load, seconds), env=env, capture_output=True, text=True,
                          timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return parse_wrk(done.stdout)


def start_wrk(wrk: str, url: str, load: Load, seconds: float) -> subprocess.Popen[str]:
    env = {**os.environ, "BENCH_LUA_DIR": str(BENCH / "lua")}
    return subprocess.Popen(wrk_argv(wrk, url, load, seconds), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def errors_of(stats: dict[str, Any]) -> dict[str, int]:
    keys = ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    return {k: int(stats[k]) for k in keys if int(stats[k])}


def background_load(seconds: float = 1.0) -> float:
    """Share of the machine (%) busy while we send nothing: other people's work on a shared box."""
    before = procstat.machine_busy_seconds()
    time.sleep(seconds)
    return 100 * (procstat.machine_busy_seconds() - before) / ((os.cpu_count() or 1) * seconds)


def wait_for_quiet(max_wait: float, threshold: float = 20.0) -> float:
    """Wait (at most ``max_wait`` s) until the machine is mostly idle; returns the last background load."""
    deadline = time.monotonic() + max_wait
    load = background_load()
    while load > threshold and time.monotonic() < deadline:
        log(f"  machine busy ({load:.0f} % with no load from us); waiting")
        time.sleep(5)
        load = background_load()
    return load


def measure(wrk: str, url: str, load: Load, opts: Options, server: Server, *, config: str, sessions: int,
            scenario: str, probe: Load | None = None, iterations: bool = False) -> ScenarioResult:
    background = wait_for_quiet(opts.wait_quiet)
    if opts.warmup > 0:
        run_wrk(wrk, url, load, opts.warmup)
    probe_process = None
    with procstat.Window(server.pids) as window:
        profiler = start_profiler(server, scenario, opts.duration) if opts.profile else None
        if probe is not None:
            probe_process = start_wrk(wrk, url, probe, opts.duration)
        stats = run_wrk(wrk, url, load, opts.duration)
        if profiler is not None:
            profiler.wait(timeout=opts.duration + 60)
        probe_stats = None
        if probe_process is not None:
            out, err = probe_process.communicate(timeout=opts.duration + 60)
            probe_stats = parse_wrk(out)
            if os.environ.get("BENCH_DEBUG"):
                log(f"probe output:\n{out}\n{err}")
    seconds = stats["duration_us"] / 1e6
    capacity = (os.cpu_count() or 1) * seconds / 100
    errors = errors_of(stats)
    result = ScenarioResult(
        config=config, sessions=sessions, scenario=scenario, connections=load.connections, duration_s=round(seconds, 2),
        requests=stats["requests"], rps=round(stats["requests"] / seconds, 1),
        iterations_per_s=round(stats["iterations"] / seconds, 2) if iterations else None,
        p50_ms=stats["p50_us"] / 1000, p95_ms=stats["p95_us"] / 1000, p99_ms=stats["p99_us"] / 1000,
        errors=sum(errors.values()), error_detail=errors, server_peak_rss_mib=round(window.peak_rss_mib, 1),
        server_cpu_pct=round(window.server_cpu / capacity, 1), load_cpu_pct=round(window.load_cpu / capacity, 1),
        other_cpu_pct=round(max(0.0, window.machine_cpu - window.server_cpu - window.load_cpu) / capacity, 1),
        server_cpu_us_per_request=round(1e6 * window.server_cpu / max(1, stats["requests"]), 1))
    result.extra["background_load_pct"] = round(background, 1)
    result.extra["largest_process_peak_rss_mib"] = round(window.largest_peak_rss_mib, 1)
    if probe_stats is not None:
        probe_errors = errors_of(probe_stats)
        result.extra["probe"] = {
            "scenario": "get_session", "connections": probe.connections if probe else 0,
            "rps": round(probe_stats["requests"] / (probe_stats["duration_us"] / 1e6), 1),
            "p50_ms": probe_stats["p50_us"] / 1000, "p95_ms": probe_stats["p95_us"] / 1000,
            "p99_ms": probe_stats["p99_us"] / 1000, "errors": sum(probe_errors.values())}
        result.errors += sum(probe_errors.values())
    log(f"  {scenario:17s} {result.rps:9.1f} req/s"
        + (f" ({result.iterations_per_s:.1f} it/s)" if iterations else "")
        + f"  p50 {result.p50_ms:.2f} p95 {result.p95_ms:.2f} p99 {result.p99_ms:.2f} ms  errors {result.errors}"
        + f"  rss {result.server_peak_rss_mib:.0f} MiB  cpu server {result.server_cpu_pct}% wrk {result.load_cpu_pct}%"
        + f" other {result.other_cpu_pct}%  {result.server_cpu_us_per_request:.0f} µs CPU/req")
    return result


def start_profiler(server: Server, scenario: str, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy on the server's first process for the measured window: collapsed stacks beside its log."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        raise SystemExit("error: --profile needs py-spy (a dev dependency): scripts/ensure-env")
    out = server.log_path.parent / f"profile-{scenario}.txt"
    pid = server.pids[-1] if len(server.pids) > 1 else server.process.pid  # a worker, not the supervisor
    return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250",
                             "--format", "raw", "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---- Tessera configurations ------------------------------------------------------------------


@contextlib.contextmanager
def throwaway_pg_database() -> Iterator[str]:
    import psycopg

    name = f"tessera_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tessera_env(opts: Options, data_dir: Path, database_url: str, port: int) -> dict[str, str]:
    env = {**os.environ, "TESSERA_DATA_DIR": str(data_dir), "TESSERA_HOST": "127.0.0.1", "TESSERA_PORT": str(port),
           "TESSERA_LOG_LEVEL": "warning", "TESSERA_GRPC_PORT": "0",
           "TESSERA_PASSWORD_MEMORY_KIB": str(opts.argon2_m), "TESSERA_PASSWORD_TIME_COST": str(opts.argon2_t),
           "TESSERA_PASSWORD_PARALLELISM": str(opts.argon2_p)}
    if database_url:
        env["TESSERA_DATABASE_URL"] = database_url
    return env


def tessera_cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "tessera", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"tessera {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def storage_bytes(database_url: str, sqlite_path: Path | None) -> int:
    if sqlite_path is not None:
        return sum(p.stat().st_size for p in sqlite_path.parent.glob(sqlite_path.name + "*"))
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute("SELECT pg_total_relation_size('sessions') + pg_total_relation_size('events')").fetchone()
        return int(row[0]) if row else 0


def hashing_ceiling(opts: Options, hashing_threads: int) -> dict[str, float]:
    """workers / median verify time, with the server's argon2id parameters, measured now."""
    from tessera.crypto.passwords import HashParameters, PasswordHashing, usable_cores

    hashing = PasswordHashing(HashParameters(memory_kib=opts.argon2_m, time_cost=opts.argon2_t,
                                             parallelism=opts.argon2_p), workers=1)
    stored = hashing.hash_sync(PASSWORD)
    samples = []
    for _ in range(15 if opts.quick else 41):
        started = time.perf_counter()
        assert hashing.verify_sync(stored, PASSWORD).ok
        samples.append(time.perf_counter() - started)
    median = statistics.median(samples)
    workers = min(hashing_threads, usable_cores())
    # The same verifies on every worker thread at once: argon2 is memory-hard, and parallel verifies
    # share caches and memory bandwidth, so this rate can sit below workers / median.
    rounds = 8 if opts.quick else 25
    threads = [threading.Thread(target=lambda: [hashing.verify_sync(stored, PASSWORD) for _ in range(rounds)])
               for _ in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    parallel = workers * rounds / (time.perf_counter() - started)
    return {"median_verify_ms": round(median * 1000, 2), "workers": workers,
            "ceiling_per_s": round(workers / median, 1), "parallel_verifies_per_s": round(parallel, 1)}


def seed_tessera(env: dict[str, str], data_dir: Path, database_url: str, *, sessions: int, read_set: int,
                 update_set: int) -> Any:
    """``tessera init``, a template user with ``PASSWORD``, and ``sessions`` sessions over copies of that user
    (bench/seed.py), in the database ``env`` names; the seed's result (users, read and update sets)."""
    import seed
    from sqlalchemy import create_engine, select

    from tessera.store.schema import instances

    tessera_cli(env, "init")
    template = json.loads(tessera_cli(env, "users", "add", "benchtemplate", "--email", "bench@example.com",
                                      "--given-name", "Bench", "--family-name", "User", "--password-stdin",
                                      "--json", stdin=PASSWORD + "\n"))[0]
    url = database_url or f"sqlite:///{data_dir / 'tessera.db'}"
    engine = create_engine(url)
    with engine.connect() as conn:
        admin_user_id = conn.execute(select(instances.c.admin_user_id)).scalar_one()
    engine.dispose()
    return seed.seed(url, sessions=sessions, sessions_per_user=SESSIONS_PER_USER, template_user_id=template["id"],
                     org_id=template["org_id"], creator_id=admin_user_id, read_set=read_set, update_set=update_set,
                     sqlite_path=None if database_url else data_dir / "tessera.db")


def run_tessera(wrk: str, opts: Options, config: str, db: str, workers: int, sessions: int,
                work: Path) -> tuple[list[ScenarioResult], dict[str, Any]]:
    shutil.rmtree(work, ignore_errors=True)  # left over from an earlier run into the same --out
    data_dir = work / "data"
    data_dir.mkdir(parents=True)
    results: list[ScenarioResult] = []
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(throwaway_pg_database()) if db == "postgres" else ""
        port = free_port()
        env = tessera_env(opts, data_dir, database_url, port)
        log(f"{config} N={sessions:,}: seeding")
        seeded = seed_tessera(env, data_dir, database_url, sessions=sessions, read_set=min(READ_SET, sessions // 2),
                              update_set=min(UPDATE_SET, sessions // 4))
        sqlite_path = data_dir / "tessera.db" if db == "sqlite" else None
        stored = storage_bytes(database_url, sqlite_path)
        log(f"{config} N={sessions:,}: seeded {sessions:,} sessions and {len(seeded.users):,} users in "
            f"{seeded.seconds:.1f} s; {stored / sessions:.0f} bytes per session")
        users_file, read_file, update_file = work / "users.tsv", work / "read.tsv", work / "update.tsv"
        users_file.write_text("".join(f"{uid}\t{name}\n" for uid, name in seeded.users))
        read_file.write_text("".join(f"{sid}\t{token}\t{uid}\n" for sid, token, uid in seeded.read_set))
        update_file.write_text("".join(f"{sid}\n" for sid in seeded.update_set))

        argv = [sys.executable, "-m", "tessera", "serve"] + (["--workers", str(workers)] if workers > 1 else [])
        server = Server(argv, env, port, work / "server.log", work)
        stack.callback(server.stop)
        server.wait_ready()
        pat = (data_dir / "admin.pat").read_text().strip()
        smoke(server.url, pat, seeded)
        meta: dict[str, Any] = {"seed_seconds": round(seeded.seconds, 1), "bytes_per_session": round(stored / sessions),
                                "stored_bytes": stored, "users": len(seeded.users), "workers": workers,
                                "idle_rss_mib": round(procstat.rss_mib(server.pids), 1)}
        loads = {
            "noop": Load("noop", None, pat),
            "token_auth": Load("token_auth", read_file, ""),
            "get_session": Load("get_session", read_file, pat),
            "list_by_user": Load("list_by_user", users_file, pat),
            "update_session": Load("update_session", update_file, pat),
            "add_session": Load("add_session", users_file, pat),
            "password_session": Load("password_session", users_file, pat, [PASSWORD]),
        }
        for name in [s for s in SCENARIOS if s in opts.scenarios]:
            load = loads[name]
            load.connections, load.threads = opts.connections, opts.threads
            probe = None
            if name == "password_session":
                from tessera.crypto.passwords import threads_per_process
                meta["hashing"] = hashing_ceiling(opts, hashing_threads=workers * threads_per_process(workers))
                log(f"  hashing ceiling: {meta['hashing']}")
                probe = Load("get_session", read_file, pat, [str(opts.probe_delay_ms)],
                             connections=opts.probe_connections)
            results.append(measure(wrk, server.url, load, opts, server, config=config, sessions=sessions,
                                   scenario=name, probe=probe, iterations=name == "password_session"))
        meta["rss_after_mib"] = round(procstat.rss_mib(server.pids), 1)
    return results, meta


def smoke(url: str, pat: str, seeded: Any) -> None:
    """One request per kind before loading: a broken scenario fails here, with its answer."""
    sid, token, uid = seeded.read_set[0]
    checks = [
        ("GET", "/v2/users/me", None, token),
        ("POST", "/zitadel.session.v2.SessionService/GetSession", {"sessionId": sid, "sessionToken": token}, pat),
        ("POST", "/zitadel.session.v2.SessionService/ListSessions",
         {"query": {"limit": 100}, "queries": [{"userIdQuery": {"id": uid}}]}, pat),
        ("POST", "/zitadel.settings.v2.SettingsService/GetGeneralSettings", {}, pat),
    ]
    for method, path, body, bearer in checks:
        headers = {"content-type": "application/json"}
        if bearer:
            headers["authorization"] = f"Bearer {bearer}"
        status, answer = http(method, url + path, body=json.dumps(body).encode() if body is not None else None,
                              headers=headers)
        if status != 200:
            raise RuntimeError(f"smoke check {method} {path} answered {status}: {answer[:500]!r}")
    listing = {"query": {"limit": 100}, "queries": [{"userIdQuery": {"id": uid}}]}
    status, answer = http("POST", url + "/zitadel.session.v2.SessionService/ListSessions",
                          body=json.dumps(listing).encode(),
                          headers={"content-type": "application/json", "authorization": f"Bearer {pat}"})
    listed = len(json.loads(answer).get("sessions", []))
    if listed != min(100, SESSIONS_PER_USER):
        raise RuntimeError(f"a seeded user lists {listed} sessions, expected {SESSIONS_PER_USER}")


# ---- the peer --------------------------------------------------------------------------------


def run_peer(wrk: str, opts: Options, sessions: int, work: Path) -> tuple[list[ScenarioResult], dict[str, Any]]:
    python = ensure_peer_venv()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db = work / "peer.db"
    users = max(1, -(-sessions // SESSIONS_PER_USER))
    log(f"peer N={sessions:,}: seeding")
    started = time.monotonic()
    subprocess.run([str(python), str(BENCH / "peer" / "seed.py"), str(db), str(users), str(sessions), PASSWORD,
                    str(work)], check=True, timeout=1800, env=peer_env(opts, db))
    meta: dict[str, Any] = {"seed_seconds": round(time.monotonic() - started, 1),
                            "bytes_per_token": round(sum(p.stat().st_size for p in work.glob("peer.db*")) / sessions)}
    port = free_port()
    argv = [str(python), "-m", "uvicorn", "app:app", "--app-dir", str(BENCH / "peer"), "--host", "127.0.0.1",
            "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
            "--no-access-log"]
    server = Server(argv, peer_env(opts, db), port, work / "peer.log", work)
    results = []
    try:
        server.wait_ready()
        token_row = (work / "peer_tokens.tsv").read_text().splitlines()[0].split("\t")
        status, answer = http("GET", server.url + "/users/me", headers={"authorization": f"Bearer {token_row[1]}"})
        if status != 200:
            raise RuntimeError(f"peer smoke check answered {status}: {answer[:300]!r}")
        for name, load, its in (
            ("token_auth", Load("token_auth", work / "peer_tokens.tsv", "", ["/users/me"]), False),
            ("password_session", Load("peer_login", work / "peer_users.tsv", "", [PASSWORD]), True),
        ):
            if name not in opts.scenarios:
                continue
            load.connections, load.threads = opts.connections, opts.threads
            if name == "password_session":
                meta["hashing"] = hashing_ceiling(opts, hashing_threads=1)  # pwdlib verifies on the event loop
            results.append(measure(wrk, server.url, load, opts, server, config="peer", sessions=sessions,
                                   scenario=name, iterations=its))
    finally:
        server.stop()
    return results, meta


def peer_env(opts: Options, db: Path) -> dict[str, str]:
    return {**os.environ, "PEER_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "PEER_ARGON2_M": str(opts.argon2_m),
            "PEER_ARGON2_T": str(opts.argon2_t), "PEER_ARGON2_P": str(opts.argon2_p)}


# ---- main ------------------------------------------------------------------------------------


def machine_info(wrk: str) -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    versions: dict[str, str] = {"python": platform.python_version()}
    from importlib.metadata import version

    for package in ("tessera", "uvicorn", "uvloop", "httptools", "connectrpc", "protobuf-py", "sqlalchemy",
                    "psycopg", "argon2-cffi"):
        with contextlib.suppress(Exception):
            versions[package] = version(package)
    versions["wrk"] = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split("Copyright")[0].strip()
    with contextlib.suppress(Exception):
        versions["postgresql"] = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    with contextlib.suppress(Exception):
        versions["sqlite"] = __import__("sqlite3").sqlite_version
    with contextlib.suppress(Exception):
        versions["git"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                         text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 1048576, 1),
            "kernel": platform.release(), "versions": versions}


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs, SQLite, 10 000 sessions (< 2 minutes)")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default=None)
    parser.add_argument("--sessions", default=None, help="comma-separated stored-session counts")
    parser.add_argument("--duration", type=int, default=None, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up seconds per scenario")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--pg-workers", type=int, default=2, help="workers of the multi-process PostgreSQL run")
    parser.add_argument("--sqlite-workers", type=int, default=None,
                        help="workers of the multi-process SQLite run [full run 2, --quick 1: none]")
    parser.add_argument("--no-peer", action="store_true", help="skip the fastapi-users peer")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--argon2-m", type=int, default=19456, help="argon2id memory (KiB), server and peer")
    parser.add_argument("--argon2-t", type=int, default=2)
    parser.add_argument("--argon2-p", type=int, default=1)
    parser.add_argument("--wait-quiet", type=float, default=None,
                        help="seconds to wait, before each scenario, for other work on the machine to stop "
                             "[full run 30, --quick 0]")
    parser.add_argument("--profile", action="store_true",
                        help="record each scenario with py-spy (collapsed stacks in the result directory)")
    parser.add_argument("--out", type=Path, default=None, help="result directory [bench/results/<time>]")
    args = parser.parse_args(argv)
    db = args.db or ("sqlite" if args.quick else "both")
    sizes_text = args.sessions or ("10000" if args.quick else "10000,1000000")
    sizes = [int(s.replace("_", "")) for s in sizes_text.split(",")]
    return Options(
        dbs=["sqlite", "postgres"] if db == "both" else [db], sizes=sizes,
        duration=args.duration or (3 if args.quick else 15), warmup=args.warmup if args.warmup is not None else
        (1 if args.quick else 5), connections=args.connections, threads=args.threads, pg_workers=args.pg_workers,
        sqlite_workers=args.sqlite_workers if args.sqlite_workers is not None else (1 if args.quick else 2),
        peer=not args.no_peer, scenarios=[s for s in args.scenarios.split(",") if s], argon2_m=args.argon2_m,
        argon2_t=args.argon2_t, argon2_p=args.argon2_p,
        out=(args.out or BENCH / "results" / time.strftime("%Y%m%d-%H%M%S")).resolve(), quick=args.quick,
        wait_quiet=args.wait_quiet if args.wait_quiet is not None else (0 if args.quick else 30),
        profile=args.profile)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    wrk = ensure_wrk()
    unknown = set(opts.scenarios) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"error: unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    if "postgres" in opts.dbs:
        subprocess.run([str(ROOT / "scripts" / "ensure-postgres")], check=False, timeout=120)
    if opts.peer:
        ensure_peer_venv()
    opts.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    configs: list[tuple[str, str, int]] = []
    for db in opts.dbs:
        configs.append((db, db, 1))
        if db == "postgres" and opts.pg_workers > 1:
            configs.append((f"postgres-{opts.pg_workers}w", "postgres", opts.pg_workers))
        if db == "sqlite" and opts.sqlite_workers > 1:
            configs.append((f"sqlite-{opts.sqlite_workers}w", "sqlite", opts.sqlite_workers))
    document: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine_info(wrk),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "results": [], "meta": {}, "failures": []}
    work_root = opts.out / "work"
    for sessions in opts.sizes:
        for config, db, workers in configs:
            log(f"== {config} with {sessions:,} stored sessions")
            try:
                try:
                    results, meta = run_tessera(wrk, opts, config, db, workers, sessions,
                                                work_root / f"{config}-{sessions}")
                except Exception as exc:
                    if opts.quick:
                        raise
                    log(f"{config} N={sessions} failed ({exc}); one more try")  # a long run outlives glitches
                    results, meta = run_tessera(wrk, opts, config, db, workers, sessions,
                                                work_root / f"{config}-{sessions}")
            except Exception as exc:  # keep going; the failure is reported and fails the run
                log(f"FAILED {config} N={sessions}: {exc}")
                document["failures"].append(f"{config} N={sessions}: {exc}")
                continue
            document["results"] += [asdict(r) for r in results]
            document["meta"][f"{config}/{sessions}"] = meta
            if opts.peer and config == configs[0][0]:
                # Right after the first configuration (SQLite, like the peer): on a shared machine,
                # side by side in time is as important as side by side in the table.
                try:
                    results, meta = run_peer(wrk, opts, sessions, work_root / f"peer-{sessions}")
                    document["results"] += [asdict(r) for r in results]
                    document["meta"][f"peer/{sessions}"] = meta
                except Exception as exc:
                    log(f"FAILED peer N={sessions}: {exc}")
                    document["failures"].append(f"peer N={sessions}: {exc}")
    document["elapsed_s"] = round(time.monotonic() - started, 1)
    (opts.out / "results.json").write_text(json.dumps(document, indent=2))
    markdown = report.render(document)
    (opts.out / "report.md").write_text(markdown)
    print(markdown)
    bad = bool(document["failures"]) or any(r["errors"] for r in document["results"])
    if not bad:  # databases and logs are kept when something failed; profiles are always kept
        for profile in work_root.glob("*/profile-*.txt"):
            profile.rename(opts.out / f"{profile.parent.name}-{profile.name}")
        shutil.rmtree(work_root, ignore_errors=True)
    log(f"results in {opts.out} ({document['elapsed_s']} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
