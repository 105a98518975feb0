"""Faults under the server: PostgreSQL going away and coming back, a full disk, a read-only disk.

PostgreSQL is restarted in a private cluster of its own (``support.private_postgres``), never
the shared one other tests use. The SQLite faults use a small tmpfs mounted over the data
directory (root only; skipped elsewhere):

- full: a filler file takes the remaining space while the server runs;
- read-only: Linux refuses to remount a filesystem read-only while a process holds a file on it
  open for writing (EBUSY), so a running server cannot be given a read-only database; the test
  makes the filesystem read-only while the server is stopped and starts it there.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..conftest import ServerProcess
from ..helpers import add_human, session_call, sign_in
from .load import EXPECTED_UNDER_LOAD, Load, verify
from .support import Db, PrivatePostgres, connect_code, db_url, env_int, leaked_text, private_postgres

SECONDS = env_int("TESSERA_SOAK_SECONDS", 5)


# ---- PostgreSQL restarted during load -----------------------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    try:
        with private_postgres() as pg:
            yield pg
    except RuntimeError as exc:
        pytest.skip(f"no private PostgreSQL cluster here: {exc}")


def test_postgres_restart_during_load(tmp_path: Path, cluster: PrivatePostgres) -> None:
    (tmp_path / "data").mkdir()
    server = ServerProcess(data_dir=tmp_path / "data", database_url=cluster.url).start()
    try:
        load = Load(server, clients=8)
        down: dict[str, list[httpx.Response]] = {"answers": []}

        def restart() -> None:
            cluster.stop()
            # While PostgreSQL is down every request fails fast and cleanly: unavailable, never 500.
            deadline = time.monotonic() + 1.5
            with httpx.Client(timeout=15) as client:
                while time.monotonic() < deadline:
                    for method, body in (("CreateSession", {}), ("ListSessions", {}),
                                         ("GetSession", {"sessionId": "1"})):
                        down["answers"].append(client.post(
                            f"{server.url}/zitadel.session.v2.SessionService/{method}", json=body,
                            headers={"authorization": f"Bearer {server.admin_pat}"}))
                    down["answers"].append(client.get(f"{server.url}/v2/users/me",
                                                      headers={"authorization": f"Bearer {server.admin_pat}"}))
            cluster.start()

        result = load.run(max(SECONDS, 5), fault=restart, fault_after=2)
        assert cluster.is_ready()
        assert down["answers"], "no request was made while PostgreSQL was down"
        for answer in down["answers"]:
            assert (answer.status_code, connect_code(answer)) in ((503, "unavailable"), (503, "14")), answer.text
            assert leaked_text(answer.text) is None, answer.text

        # Tessera recovers by itself: no restart, the next requests succeed.
        recovered = False
        for _ in range(100):
            if session_call(server, "ListSessions", {}).status_code == 200:
                recovered = True
                break
            time.sleep(0.1)
        assert recovered, "Tessera did not recover after PostgreSQL came back"
        user = add_human(server)
        assert sign_in(server, user["name"])["sessionToken"]

        outcomes = {k: v for k, v in result.outcomes.items() if k.split(" ", 1)[1] not in EXPECTED_UNDER_LOAD}
        allowed = {"503 unavailable"}
        assert all(k.split(" ", 1)[1] in allowed for k in outcomes), result.outcomes
        assert any(k.endswith("503 unavailable") for k in result.outcomes), "the load never saw the outage"
        db = Db(db_url(server))
        try:
            checked = verify(server, db, result)
        finally:
            db.close()
        print(f"\nPostgreSQL restart: {result.requests} requests, outcomes {dict(result.outcomes)}, "
              f"{len(down['answers'])} probes while down, checked {checked}")
        assert "Traceback" not in server.log()
    finally:
        server.stop()


# ---- SQLite: full disk, read-only disk -------------------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[None]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def _integrity(data_dir: Path) -> str:
    conn = sqlite3.connect(data_dir / "tessera.db")
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()  # an open file would keep the tmpfs busy


def test_full_disk_gives_unavailable_and_recovers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with small_tmpfs(data_dir, "6m"):
        server = ServerProcess(data_dir=data_dir).start()
        try:
            user = add_human(server)
            before = sign_in(server, user["name"])
            filler = _fill(data_dir)
            big = {"metadata": {f"k{i}": "eHh4" * 1000 for i in range(20)}}
            answers = [session_call(server, "CreateSession", big) for _ in range(60)]
            answers += [session_call(server, "SetSession", {"sessionId": before["sessionId"], **big})]
            failed = [a for a in answers if a.status_code != 200]
            assert failed, "the disk never filled up"
            for answer in failed:
                assert (answer.status_code, connect_code(answer)) == (503, "unavailable"), answer.text
                assert leaked_text(answer.text) is None, answer.text
            # Reads keep working, and the session written before is intact.
            got = session_call(server, "GetSession", {"sessionId": before["sessionId"],
                                                      "sessionToken": before["sessionToken"]})
            assert got.status_code == 200, got.text
            assert session_call(server, "ListSessions", {}).status_code == 200

            filler.unlink()  # space returns: writes work again without a restart
            assert session_call(server, "CreateSession", big).status_code == 200
            assert sign_in(server, user["name"])["sessionToken"]
            assert _integrity(data_dir) == "ok"
            print(f"\nfull disk: {len(failed)} of {len(answers)} writes refused with 503, then recovered")
            assert "Traceback" not in server.log()
        finally:
            server.stop()
        assert _integrity(data_dir) == "ok"


def test_read_only_database_fails_clearly_and_recovers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with small_tmpfs(data_dir, "16m"):
        server = ServerProcess(data_dir=data_dir).start()
        try:
            user = add_human(server)
            session = sign_in(server, user["name"])
            server.stop()
            subprocess.run(["mount", "-o", "remount,ro", str(data_dir)], check=True)
            try:
                log_before = len(server.log())
                with pytest.raises(RuntimeError, match="exited early"):
                    server.start(timeout=30)
                attempt = server.log()[log_before:]
                assert "error: cannot use the database" in attempt, attempt
                assert "Traceback" not in attempt and "\u256d" not in attempt, attempt  # one line, no traceback
            finally:
                server.stop()
                subprocess.run(["mount", "-o", "remount,rw", str(data_dir)], check=True)
            server.process = None
            server.start()
            got = session_call(server, "GetSession", {"sessionId": session["sessionId"],
                                                      "sessionToken": session["sessionToken"]})
            assert got.status_code == 200, got.text
            assert sign_in(server, user["name"])["sessionToken"]
        finally:
            server.stop()
        assert _integrity(data_dir) == "ok"
