"""The operator CLI: ``python -m tessera`` on a real data directory."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tessera.cli import app
from tessera.config import Settings
from tessera.container import Container
from tessera.errors import TesseraError
from tessera.store import users as user_store

ENV = {**os.environ, "TESSERA_PASSWORD_MEMORY_KIB": "1024", "TESSERA_PASSWORD_TIME_COST": "1"}
for name in ("TESSERA_DATABASE_URL", "TESSERA_CONFIG", "TESSERA_SECRETS_KEY", "TESSERA_ADMIN_PAT_FILE"):
    ENV.pop(name, None)
PASSWORD = "Cli-Secret-pw-1"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "data"
    result = subprocess.run([sys.executable, "-m", "tessera", "init", "--data-dir", str(path)], env=ENV,
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return path


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def tessera(data_dir: Path, *args: str, stdin: str | None = None, subprocess_: bool = False) -> Outcome:
    """Run a CLI command on ``data_dir``: in process by default (fast), or as ``python -m tessera``."""
    env = {**ENV, "TESSERA_DATA_DIR": str(data_dir)}
    if subprocess_:
        done = subprocess.run([sys.executable, "-m", "tessera", *args], env=env, input=stdin, capture_output=True,
                              text=True, check=False, timeout=120)
        return Outcome(done.returncode, done.stdout, done.stderr)
    result = CliRunner().invoke(app, list(args), input=stdin, env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


def ok_json(data_dir: Path, *args: str, stdin: str | None = None, subprocess_: bool = False) -> Any:
    result = tessera(data_dir, *args, "--json", stdin=stdin, subprocess_=subprocess_)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def inside(data_dir: Path) -> Iterator[Container]:
    """The same database, in process, to check what the CLI did."""
    container = Container(Settings(data_dir=data_dir))
    yield container
    container.close()


def by_username(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["username"]: row for row in rows}


# ---- every command documents itself -----------------------------------------------------------------


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group (typer vendors its own click, so this goes by shape, not class)."""
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from _commands(command, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_the_documented_commands_exist() -> None:
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"serve", "init", "migrate", "users add", "users list", "users lock", "users unlock", "users delete",
            "orgs add", "orgs list", "pats create", "pats list", "pats revoke"} <= paths


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "tessera")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    command = dict(COMMANDS)[path]
    assert command.help or command.short_help, path


def test_python_dash_m_tessera_help() -> None:
    result = subprocess.run([sys.executable, "-m", "tessera", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "users" in result.stdout and "serve" in result.stdout


def test_no_option_takes_a_password_value() -> None:
    for path, command in COMMANDS:
        for param in command.params:
            name = param.name or ""
            if name.endswith(("password", "secret")) and param.param_type_name == "option":
                assert param.is_flag, f"{' '.join(path)} {param.opts} would take a password from argv"


def test_a_password_on_the_command_line_is_refused(data_dir: Path) -> None:
    result = tessera(data_dir, "users", "add", "argv-user", "--email", "a@example.com", "--given-name", "A",
                     "--family-name", "B", "--password", PASSWORD, subprocess_=True)
    assert result.returncode != 0
    assert "argv-user" not in json.dumps(ok_json(data_dir, "users", "list"))


# ---- users -----------------------------------------------------------------------------------------


def test_users_add_with_password_from_stdin(data_dir: Path, inside: Container) -> None:
    row = ok_json(data_dir, "users", "add", "alice", "--email", "alice@example.com", "--given-name", "Alice",
                  "--family-name", "Liddell", "--password-stdin", stdin=PASSWORD + "\n", subprocess_=True)
    assert (row[0]["username"], row[0]["type"], row[0]["state"]) == ("alice", "human", "active")
    assert row[0]["login_name"] == "alice@tessera.localhost"
    user = asyncio.run(inside.users.load(row[0]["id"]))
    assert (user.given_name, user.family_name, user.email) == ("Alice", "Liddell", "alice@example.com")
    stored = inside.db.run_sync(lambda conn: user_store.get_password_hash(conn, user.id))
    assert asyncio.run(inside.hashing.verify(stored, PASSWORD)).ok


def test_users_add_with_a_prompted_password(data_dir: Path, inside: Container) -> None:
    result = CliRunner().invoke(app, ["users", "add", "prompted", "--email", "p@example.com", "--given-name", "P",
                                      "--family-name", "Q", "--password", "--data-dir", str(data_dir), "--json"],
                                input=f"{PASSWORD}\n{PASSWORD}\n", env={"TESSERA_PASSWORD_MEMORY_KIB": "1024"})
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # the prompt hides the input
    user = asyncio.run(inside.users.find_by_login_name("prompted"))
    assert user is not None and user.has_password


def test_users_add_rejects_a_weak_password(data_dir: Path) -> None:
    result = tessera(data_dir, "users", "add", "weakling", "--email", "w@example.com", "--given-name", "W",
                     "--family-name", "K", "--password-stdin", stdin="weakpass\n")
    assert result.returncode == 1
    assert "DOMAIN-" in result.stderr and "weakpass" not in result.stderr + result.stdout
    assert "weakling" not in by_username(ok_json(data_dir, "users", "list"))


def test_users_add_needs_profile_for_humans(data_dir: Path) -> None:
    result = tessera(data_dir, "users", "add", "nameless")
    assert result.returncode == 1
    assert "--email" in result.stderr


def test_users_add_machine_and_list(data_dir: Path) -> None:
    row = ok_json(data_dir, "users", "add", "deploy-bot", "--machine", "--name", "Deploy bot")[0]
    assert (row["type"], row["state"]) == ("machine", "active")
    users = by_username(ok_json(data_dir, "users", "list"))
    assert {"tessera-admin", "deploy-bot"} <= set(users)
    assert users["deploy-bot"]["id"] == row["id"]
    assert list(by_username(ok_json(data_dir, "users", "list", "--search", "DEPLOY"))) == ["deploy-bot"]
    duplicate = tessera(data_dir, "users", "add", "Deploy-Bot", "--machine")
    assert duplicate.returncode == 1 and "COMMAND-k2unb" in duplicate.stderr


def test_users_list_table(data_dir: Path) -> None:
    result = tessera(data_dir, "users", "list")
    assert result.returncode == 0
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["ID", "USERNAME", "TYPE", "STATE", "EMAIL", "LOGIN_NAME"]
    assert any("tessera-admin" in line and "machine" in line for line in lines)


def test_users_lock_unlock_delete(data_dir: Path) -> None:
    user_id = ok_json(data_dir, "users", "add", "cycle", "--email", "c@example.com", "--given-name", "C",
                      "--family-name", "Y")[0]["id"]
    for action, state in (("lock", "locked"), ("unlock", "active")):
        result = tessera(data_dir, "users", action, user_id)
        assert result.returncode == 0, result.stderr
        assert by_username(ok_json(data_dir, "users", "list"))["cycle"]["state"] == state
    twice = tessera(data_dir, "users", "unlock", user_id)
    assert twice.returncode == 1 and "COMMAND-4M0ds" in twice.stderr
    assert tessera(data_dir, "users", "delete", user_id).returncode == 0
    assert "cycle" not in by_username(ok_json(data_dir, "users", "list"))
    missing = tessera(data_dir, "users", "lock", user_id)
    assert missing.returncode == 1
    assert "User could not be found (QUERY-Dfbg2)" in missing.stderr


# ---- organizations -----------------------------------------------------------------------------------


def test_orgs_add_and_list(data_dir: Path) -> None:
    row = ok_json(data_dir, "orgs", "add", "Acme Inc", "--domain", "acme.test")[0]
    assert (row["name"], row["domain"]) == ("Acme Inc", "acme.test")
    derived = ok_json(data_dir, "orgs", "add", "Globex Corp")[0]
    assert derived["domain"] == "globex-corp.tessera.localhost"
    listed = {o["name"]: o for o in ok_json(data_dir, "orgs", "list")}
    assert {"Tessera", "Acme Inc", "Globex Corp"} <= set(listed)
    assert listed["Acme Inc"]["id"] == row["id"]
    duplicate = tessera(data_dir, "orgs", "add", "acme inc")
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    # a user in the new organization gets its domain in the login name
    user = ok_json(data_dir, "users", "add", "wile", "--email", "w@acme.test", "--given-name", "Wile",
                   "--family-name", "Coyote", "--org", row["id"])[0]
    assert user["login_name"] == "wile@acme.test"


# ---- personal access tokens ----------------------------------------------------------------------------


def test_pats_create_list_revoke(data_dir: Path, inside: Container) -> None:
    bot_id = ok_json(data_dir, "users", "add", "pat-bot", "--machine")[0]["id"]
    created = ok_json(data_dir, "pats", "create", bot_id)
    token, token_id = created["token"], created["token_id"]
    assert token.startswith("tpat_")
    principal = asyncio.run(inside.authenticator.authenticate(f"Bearer {token}"))
    assert principal.user_id == bot_id

    expiring = ok_json(data_dir, "pats", "create", bot_id, "--expires", "2099-06-01T12:00:00")
    listed = ok_json(data_dir, "pats", "list", "--user", bot_id)
    assert [p["id"] for p in listed] == [token_id, expiring["token_id"]]
    assert listed[0]["expires"] == "never"
    assert listed[1]["expires"] == "2099-06-01T12:00:00.000000Z"
    assert token not in json.dumps(listed)
    plain = tessera(data_dir, "pats", "create", bot_id)
    assert plain.returncode == 0 and plain.stdout.splitlines()[-1].startswith("tpat_")

    assert tessera(data_dir, "pats", "revoke", bot_id, token_id).returncode == 0
    with pytest.raises(TesseraError):
        asyncio.run(inside.authenticator.authenticate(f"Bearer {token}"))
    assert token_id not in [p["id"] for p in ok_json(data_dir, "pats", "list", "--user", bot_id)]
    again = tessera(data_dir, "pats", "revoke", bot_id, token_id)
    assert again.returncode == 1 and "not found" in again.stderr


def test_pats_for_humans_are_refused(data_dir: Path) -> None:
    human_id = ok_json(data_dir, "users", "add", "pat-human", "--email", "h@example.com", "--given-name", "H",
                       "--family-name", "U")[0]["id"]
    result = tessera(data_dir, "pats", "create", human_id)
    assert result.returncode == 1 and "COMMAND-Dfr3d" in result.stderr


# ---- schema ----------------------------------------------------------------------------------------


def test_migrate_is_idempotent(data_dir: Path, tmp_path: Path) -> None:
    for directory in (data_dir, tmp_path / "new"):
        for _ in range(2):
            result = tessera(directory, "migrate")
            assert result.returncode == 0, result.stderr
            assert "up to date" in result.stdout
    assert (tmp_path / "new" / "tessera.db").exists()
