"""First start from nothing with the README's first command, restarts, ``tessera init``, and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import zitadel_client
from zitadel_client.models import OrganizationServiceListOrganizationsRequest, UserServiceListUsersRequest

from .conftest import PG_ADMIN_DSN, ROOT, free_port, throwaway_pg_database

# cheap password hashing keeps the suite fast, as in conftest
ENV = {**os.environ, "TESSERA_PASSWORD_MEMORY_KIB": "1024", "TESSERA_PASSWORD_TIME_COST": "1",
       "TESSERA_LOG_LEVEL": "warning"}
for name in ("TESSERA_DATA_DIR", "TESSERA_DATABASE_URL", "TESSERA_PORT", "TESSERA_HOST", "TESSERA_ADMIN_PAT_FILE",
             "TESSERA_CONFIG", "TESSERA_SECRETS_KEY"):
    ENV.pop(name, None)


@contextlib.contextmanager
def serving(command: list[str], port: int, log: Path, cwd: Path) -> Iterator[str]:
    """Run a server command until the block ends; yields its URL once /healthz answers."""
    url = f"http://127.0.0.1:{port}"
    env = {**ENV, "TESSERA_GRPC_PORT": str(free_port())}  # not PORT+1, which may be taken
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        deadline = time.monotonic() + 120  # the first run of ./tessera may have to set up .venv
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tessera(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tessera", *args], env=ENV, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)


def assert_secret_file(path: Path) -> str:
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert token.startswith("tpat_") and len(token) > 40
    return token


def assert_single_instance(url: str, token: str) -> None:
    client = zitadel_client.Zitadel.with_access_token(url, token)
    users = client.users.list_users(UserServiceListUsersRequest())
    assert int(users.details.total_result) == 1
    [admin] = users.result
    assert admin.username == "tessera-admin"
    assert admin.machine is not None
    orgs = client.organizations.list_organizations(OrganizationServiceListOrganizationsRequest())
    assert [(o.name, o.primary_domain) for o in orgs.result] == [("Tessera", "tessera.localhost")]


def test_readme_first_command_creates_everything_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"  # does not exist yet
    port = free_port()
    log = tmp_path / "serve.log"
    command = [str(ROOT / "tessera"), "serve", "--data-dir", str(data_dir), "--port", str(port)]

    with serving(command, port, log, cwd=tmp_path) as url:
        pat_file = data_dir / "admin.pat"
        token = assert_secret_file(pat_file)
        assert_single_instance(url, token)
        assert httpx.get(f"{url}/readyz").status_code == 200
    first_output = log.read_text()
    assert f"written to {pat_file}" in first_output
    assert token not in first_output  # the token itself is never printed
    assert stat.S_IMODE((data_dir / "secrets.key").stat().st_mode) == 0o600
    before = pat_file.stat()

    with serving(command, port, log, cwd=tmp_path) as url:
        assert_single_instance(url, token)
    assert "already exists; nothing was created" in log.read_text()[len(first_output):]
    after = pat_file.stat()
    assert (after.st_mtime_ns, after.st_size, after.st_ino) == (before.st_mtime_ns, before.st_size, before.st_ino)
    assert pat_file.read_text().strip() == token
    with sqlite3.connect(data_dir / "tessera.db") as db:
        assert db.execute("SELECT count(*) FROM instances").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM memberships WHERE role = 'IAM_OWNER'").fetchone() == (1,)


def test_init_without_serving_then_serve(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    created = tessera("init", "--data-dir", str(data_dir), "--org-name", "Initech", "--org-domain",
                      "initech.test", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    token = assert_secret_file(data_dir / "admin.pat")
    assert f"written to {data_dir / 'admin.pat'}" in created.stdout
    assert token not in created.stdout + created.stderr
    mtime = (data_dir / "admin.pat").stat().st_mtime_ns

    again = tessera("init", "--data-dir", str(data_dir), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already exists; nothing was created" in again.stdout
    assert (data_dir / "admin.pat").stat().st_mtime_ns == mtime

    port = free_port()
    with serving([sys.executable, "-m", "tessera", "serve", "--data-dir", str(data_dir), "--port", str(port)],
                 port, tmp_path / "serve.log", cwd=tmp_path) as url:
        client = zitadel_client.Zitadel.with_access_token(url, token)
        orgs = client.organizations.list_organizations(OrganizationServiceListOrganizationsRequest())
        assert [(o.name, o.primary_domain) for o in orgs.result] == [("Initech", "initech.test")]
    assert (data_dir / "admin.pat").stat().st_mtime_ns == mtime


def test_init_refuses_to_overwrite_a_stray_pat_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "admin.pat").write_text("someone else's\n")
    result = tessera("init", "--data-dir", str(data_dir), cwd=tmp_path)
    assert result.returncode != 0
    assert "admin.pat already exists" in result.stderr
    assert (data_dir / "admin.pat").read_text() == "someone else's\n"


def test_postgresql_with_admin_pat_file(tmp_path: Path) -> None:
    pat_file = tmp_path / "secrets" / "tessera-admin.pat"
    port = free_port()
    with throwaway_pg_database() as database_url:
        command = [sys.executable, "-m", "tessera", "serve", "--port", str(port), "--admin-pat-file", str(pat_file),
                   "--database", database_url]
        with serving(command, port, tmp_path / "pg.log", cwd=tmp_path) as url:
            token = assert_secret_file(pat_file)
            assert_single_instance(url, token)
        assert not (tmp_path / ".tessera" / "tessera.db").exists()  # PostgreSQL, not SQLite
        mtime = pat_file.stat().st_mtime_ns
        with serving(command, port, tmp_path / "pg.log", cwd=tmp_path) as url:
            assert_single_instance(url, token)
        assert pat_file.stat().st_mtime_ns == mtime


def test_readyz_follows_the_database(tmp_path: Path) -> None:
    port = free_port()
    with throwaway_pg_database() as database_url:
        name = database_url.rsplit("/", 1)[1]
        command = [sys.executable, "-m", "tessera", "serve", "--port", str(port),
                   "--admin-pat-file", str(tmp_path / "admin.pat")]
        ENV["TESSERA_DATABASE_URL"] = database_url  # the environment works as well as --database
        try:
            with serving(command, port, tmp_path / "ready.log", cwd=tmp_path) as url:
                assert httpx.get(f"{url}/readyz").json() == {"status": "ok"}
                with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                ready = httpx.get(f"{url}/readyz", timeout=30)
                assert ready.status_code == 503
                assert httpx.get(f"{url}/healthz").status_code == 200
        finally:
            ENV.pop("TESSERA_DATABASE_URL", None)


def test_unusable_pat_path_creates_nothing_and_a_retry_works(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    failed = tessera("init", "--data-dir", str(data_dir), "--admin-pat-file", str(blocker / "admin.pat"),
                     cwd=tmp_path)
    assert failed.returncode == 1
    assert f"cannot create {blocker / 'admin.pat'}" in failed.stderr
    assert "Traceback" not in failed.stderr
    with sqlite3.connect(data_dir / "tessera.db") as db:
        assert db.execute("SELECT count(*) FROM instances").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)

    retried = tessera("init", "--data-dir", str(data_dir), cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr
    assert_secret_file(data_dir / "admin.pat")
