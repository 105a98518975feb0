"""Mixed concurrent load, and ``kill -9`` in the middle of it.

Bounded for CI (a few seconds each); ``TESSERA_SOAK_SECONDS=600 ./run-tests tests/reliability/test_load.py``
runs every load for ten minutes with more clients.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from ..conftest import ServerProcess, running_server
from .load import EXPECTED_UNDER_LOAD, Load, verify
from .support import Db, db_url, env_int, long_run

SECONDS = env_int("TESSERA_SOAK_SECONDS", 4)
CLIENTS = 32 if long_run() else 12

EXPECTED = EXPECTED_UNDER_LOAD


def _report(name: str, result: object, checked: dict[str, int]) -> None:
    print(f"\n{name}: {getattr(result, 'requests', 0)} requests in {getattr(result, 'seconds', 0):.1f}s; "
          f"outcomes {dict(getattr(result, 'outcomes', {}))}; checked {checked}")


@pytest.mark.parametrize(("backend", "workers"), [("sqlite", 1), ("sqlite", 2), ("postgres", 2)])
def test_mixed_load(tmp_path: Path, backend: str, workers: int) -> None:
    """One process, and two worker processes (``serve --workers 2``) sharing one database."""
    extra = ["--workers", str(workers)] if workers > 1 else []
    with running_server(tmp_path, backend, extra_args=extra) as server:
        load = Load(server, clients=CLIENTS)
        result = load.run(SECONDS)
        unexpected = {k: v for k, v in result.outcomes.items() if k.split(" ", 1)[1] not in EXPECTED}
        assert not unexpected, f"unexpected answers under load: {unexpected}"
        wrong = sum(v for k, v in result.outcomes.items() if k.startswith("WrongPassword 400 invalid_argument"))
        assert wrong > 0 and result.outcomes["SetSession 200"] > 0 and result.outcomes["CreateSession 200"] > 0
        db = Db(db_url(server))
        try:
            checked = verify(server, db, result)
        finally:
            db.close()
        _report(f"mixed load on {backend} with {workers} worker(s)", result, checked)
        assert checked.get("older tokens refused", 0) > 0 and checked.get("live sessions", 0) > 0
        assert "Traceback" not in server.log()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_during_load_loses_no_acknowledged_write(tmp_path: Path, backend: str) -> None:
    with running_server(tmp_path, backend) as server:
        load = Load(server, clients=CLIENTS)

        def kill() -> None:
            assert server.process is not None
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=30)

        result = load.run(max(SECONDS, 4), fault=kill, fault_after=max(SECONDS, 4) / 2)
        lost = sum(v for k, v in result.outcomes.items() if k.endswith(("lost", "refused")))
        assert lost > 0, "the kill did not interrupt the load"
        served = {k: v for k, v in result.outcomes.items() if not k.endswith(("lost", "refused"))}
        assert all(k.split(" ", 1)[1] in EXPECTED for k in served), served

        server.process = None
        server.start()  # the same data directory or database: must start cleanly
        _assert_intact(server)
        db = Db(db_url(server))
        try:
            checked = verify(server, db, result)
        finally:
            db.close()
        _report(f"kill -9 on {backend}", result, checked)
        assert checked.get("live sessions", 0) > 0
        after_restart = server.log().split("Tessera listening")[-1]
        assert "Traceback" not in after_restart, after_restart[-2000:]


def _assert_intact(server: ServerProcess) -> None:
    if server.database_url:
        return
    conn = sqlite3.connect(server.data_dir / "tessera.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
