"""What one call of a read scenario costs inside the application: no HTTP server, no load generator.

The ASGI application is built as ``tessera serve`` builds it and called directly, in this process, on
a database seeded as the full benchmark seeds it (``run.seed_tessera``). Wall-clock figures on a shared
machine move by tens of per cent from one minute to the next; instruction counts do not. With ``--callgrind`` each
scenario runs twice under valgrind (``--calls`` measured calls, then 1 000 more) and the difference is
reported per call: the same number on every run of the same code, whatever else the machine does.

    ./.venv/bin/python bench/inprocess.py                                  # µs per call, SQLite
    ./.venv/bin/python bench/inprocess.py --db postgres --scenarios token_auth --callgrind

Every answer must be HTTP 200; anything else stops the run with exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

SCENARIOS = ("noop", "token_auth", "get_session")
_EXTRA_CALLS = 1_000  # the second callgrind run's additional calls


def _requests(scenario: str, rows: list[list[str]], pat: str) -> list[tuple[dict[str, Any], bytes]]:
    """(ASGI scope, body) per seeded session, the same calls the wrk scripts in bench/lua/ make."""
    connect = [(b"content-type", b"application/json"), (b"authorization", b"Bearer " + pat.encode())]
    calls = []
    for session_id, token, _user_id in rows:
        if scenario == "noop":
            scope = {"method": "POST", "path": "/zitadel.settings.v2.SettingsService/GetGeneralSettings",
                     "headers": connect}
            body = b"{}"
        elif scenario == "get_session":
            scope = {"method": "POST", "path": "/zitadel.session.v2.SessionService/GetSession", "headers": connect}
            body = json.dumps({"sessionId": session_id, "sessionToken": token}).encode()
        else:
            scope = {"method": "GET", "path": "/v2/users/me", "query_string": b"",
                     "headers": [(b"authorization", b"Bearer " + token.encode())]}
            body = b""
        calls.append(({"type": "http", **scope}, body))
    return calls


def _caller(app: Any, scope: dict[str, Any], body: bytes) -> Callable[[], Awaitable[int]]:
    async def call() -> int:
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(dict(scope), receive, send)
        return status

    return call


async def _measure(work: Path, scenario: str, warmup: int, calls: int) -> tuple[float, float]:
    """Wall and CPU µs per call of ``calls`` calls after ``warmup``; every answer must be 200."""
    from tessera.app import build_asgi_app
    from tessera.config import load_settings
    from tessera.container import Container

    rows = [line.split("\t") for line in (work / "read.tsv").read_text().splitlines()]
    pat = (work / "data" / "admin.pat").read_text().strip()
    container = Container(load_settings())
    await container.load_instance_id()
    app = build_asgi_app(container)
    callers = [_caller(app, scope, body) for scope, body in _requests(scenario, rows, pat)]
    for i in range(warmup):
        await _expect_ok(callers[i % len(callers)], scenario)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(calls):
        await _expect_ok(callers[i % len(callers)], scenario)
    wall, used = time.perf_counter() - started, time.process_time() - cpu
    container.close()
    return wall / calls * 1e6, used / calls * 1e6


async def _expect_ok(call: Callable[[], Awaitable[int]], scenario: str) -> None:
    status = await call()
    if status != 200:
        raise SystemExit(f"{scenario}: HTTP {status}")


def _instructions(work: Path, scenario: str, warmup: int, calls: int) -> int:
    """Instructions valgrind counted for a whole child run of this script."""
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                           __file__, "--work", str(work), "--scenarios", scenario, "--warmup", str(warmup),
                           "--calls", str(calls)], env=os.environ, capture_output=True, text=True, timeout=3600)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--sessions", type=int, default=10_000, help="stored sessions")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--calls", type=int, default=5_000, help="measured calls (callgrind: the first run's)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions per call under valgrind")
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)  # a child run on a seeded directory
    opts = parser.parse_args(argv)
    scenarios = [s for s in opts.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown or opts.sessions < 2 or opts.calls < 1:
        parser.error(f"unknown scenarios {sorted(unknown)}" if unknown else "--sessions ≥ 2 and --calls ≥ 1")
    if opts.callgrind and shutil.which("valgrind") is None:
        parser.error("--callgrind needs valgrind (apt-get install -y valgrind)")

    if opts.work is not None:  # the child of a callgrind run: measure only
        for scenario in scenarios:
            uvloop.run(_measure(opts.work, scenario, opts.warmup, opts.calls))
        return 0

    import run

    with tempfile.TemporaryDirectory(prefix="tessera-inprocess-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        db_url = stack.enter_context(run.throwaway_pg_database()) if opts.db == "postgres" else ""
        os.environ.update({"TESSERA_DATA_DIR": str(work / "data"), "TESSERA_LOG_LEVEL": "warning"})
        if db_url:
            os.environ["TESSERA_DATABASE_URL"] = db_url
        seeded = run.seed_tessera(dict(os.environ), work / "data", db_url, sessions=opts.sessions,
                                  read_set=min(2_000, opts.sessions // 2), update_set=0)
        (work / "read.tsv").write_text("".join(f"{s}\t{t}\t{u}\n" for s, t, u in seeded.read_set))
        for scenario in scenarios:
            if opts.callgrind:
                fewer = _instructions(work, scenario, opts.warmup, opts.calls)
                more = _instructions(work, scenario, opts.warmup, opts.calls + _EXTRA_CALLS)
                print(f"{scenario}: {(more - fewer) // _EXTRA_CALLS:,} instructions per call ({opts.db})")
            else:
                wall, cpu = uvloop.run(_measure(work, scenario, opts.warmup, opts.calls))
                print(f"{scenario}: {wall:.1f} µs per call, {cpu:.1f} µs CPU ({opts.db}, {opts.calls:,} calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
