"""Every program in examples/ runs against a real server and prints what it promises."""

from __future__ import annotations

import contextlib
import io
import runpy
import sys
import time
import uuid
from pathlib import Path

import pyotp
import pytest
from zitadel_client.models import (
    SessionServiceChecks,
    SessionServiceCheckUser,
    SessionServiceCreateSessionRequest,
    UserServiceAddHumanUserRequest,
    UserServicePassword,
    UserServiceRegisterTOTPRequest,
    UserServiceSetHumanEmail,
    UserServiceSetHumanProfile,
    UserServiceVerifyTOTPRegistrationRequest,
)

from .conftest import ServerProcess

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PASSWORD = "Examp1e-Passw0rd"


@pytest.fixture(scope="module")
def person(sdk) -> dict[str, str]:  # type: ignore[no-untyped-def]
    name = f"ex-{uuid.uuid4().hex[:8]}"
    created = sdk.users.add_human_user(UserServiceAddHumanUserRequest(
        username=name, profile=UserServiceSetHumanProfile(given_name="Ex", family_name="Ample"),
        email=UserServiceSetHumanEmail(email=f"{name}@example.com", is_verified=True),
        password=UserServicePassword(password=PASSWORD, change_required=False)))
    secret = sdk.users.register_totp(UserServiceRegisterTOTPRequest(user_id=created.user_id)).secret
    # Confirm with the previous step's code (accepted as clock skew) so the current step's code
    # is still unused when the step-up example runs.
    sdk.users.verify_totp_registration(UserServiceVerifyTOTPRegistrationRequest(
        user_id=created.user_id, code=pyotp.TOTP(secret).at(time.time() - 30)))
    return {"name": name, "id": created.user_id, "totp": secret}


def run(server: ServerProcess, script: str, *args: str, ok: bool = True) -> str:
    """Run an example as ``python script args…`` would, in this process (importing the SDK
    costs about two seconds per process, so each example reuses this one's import)."""
    out = io.StringIO()
    code = 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TESSERA_URL", server.url)
        patch.setenv("TESSERA_PAT", server.admin_pat)
        patch.setattr(sys, "argv", [script, *args])
        patch.syspath_prepend(str(EXAMPLES))
        with contextlib.redirect_stdout(out):
            try:
                runpy.run_path(str(EXAMPLES / script), run_name="__main__")
            except SystemExit as exit_:
                code = int(exit_.code or 0)
    assert (code == 0) == ok, out.getvalue()
    return out.getvalue()


def test_basic_session(server: ServerProcess, person: dict[str, str]) -> None:
    out = run(server, "01_basic_session.py", person["name"])
    assert "Session created: " in out and "Session token:   tses_" in out


def test_password_session(server: ServerProcess, person: dict[str, str]) -> None:
    out = run(server, "02_password_session.py", person["name"], PASSWORD)
    assert f"for {person['name']}@tessera.localhost" in out and "Password verified at" in out


def test_metadata_round_trip(server: ServerProcess, person: dict[str, str]) -> None:
    out = run(server, "03_session_metadata.py", person["name"])
    assert "ip_address = '203.0.113.7'" in out
    assert "device = {'type': 'laptop', 'os': 'Debian'}" in out
    assert "app_version = '2.4.1'" in out


def test_get_with_and_without_token(server: ServerProcess, person: dict[str, str]) -> None:
    out = run(server, "04_get_session.py", person["name"])
    assert f"user {person['name']}@tessera.localhost" in out and "sequence 1" in out


def test_list_and_search(server: ServerProcess, person: dict[str, str]) -> None:
    run(server, "01_basic_session.py", person["name"])
    out = run(server, "05_list_sessions.py", person["id"])
    assert "sessions in total; newest first:" in out
    assert f"sessions of user {person['id']}" in out
    assert not out.splitlines()[-1].startswith("0 ")


def test_update_switches_tokens(server: ServerProcess, person: dict[str, str]) -> None:
    out = run(server, "06_update_session.py", person["name"])
    assert "Lifetime extended" in out and "sequence now 3" in out


def test_totp_step_up(server: ServerProcess, person: dict[str, str]) -> None:
    out = run(server, "07_totp_step_up.py", person["name"], PASSWORD, person["totp"])
    assert "password and TOTP verified" in out and "TOTP verified at" in out


def test_logout_everywhere(server: ServerProcess, person: dict[str, str]) -> None:
    run(server, "01_basic_session.py", person["name"])
    out = run(server, "08_logout.py", person["name"], person["id"])
    assert "Deleted session" in out and out.strip().endswith("0 left")


def test_login_function(server: ServerProcess, person: dict[str, str]) -> None:
    assert "login succeeded" in run(server, "09_login.py", person["name"], PASSWORD)
    assert "wrong password" in run(server, "09_login.py", person["name"], "Wrong-passw0rd", ok=False)
    assert "unknown user" in run(server, "09_login.py", "nobody-here", PASSWORD, ok=False)


def test_validate_and_refresh(server: ServerProcess, sdk, person: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    out = run(server, "01_basic_session.py", person["name"])
    session_id = out.split("Session created: ")[1].split()[0]
    token = out.split("Session token:   ")[1].split()[0]
    assert "is valid" in run(server, "10_validate_and_refresh.py", session_id, token)
    assert "is invalid" in run(server, "10_validate_and_refresh.py", session_id, token + "x")

    def session_with(lifetime: str) -> tuple[str, str]:
        created = sdk.sessions.create_session(SessionServiceCreateSessionRequest(
            checks=SessionServiceChecks(user=SessionServiceCheckUser(login_name=person["name"])), lifetime=lifetime))
        return created.session_id, created.session_token

    soon_id, soon_token = session_with("120s")
    out = run(server, "10_validate_and_refresh.py", soon_id, soon_token)
    assert "is refreshed" in out
    new_token = out.split("New token: ")[1].strip()
    assert new_token != soon_token
    assert "is valid" in run(server, "10_validate_and_refresh.py", soon_id, new_token)

    gone_id, gone_token = session_with("1s")
    time.sleep(1.2)
    assert "is expired" in run(server, "10_validate_and_refresh.py", gone_id, gone_token)


def test_users_me_with_session_token(server: ServerProcess, person: dict[str, str]) -> None:
    out = run(server, "11_users_me.py", person["name"], PASSWORD)
    assert f"Signed in as {person['name']}@tessera.localhost (user {person['id']}, USER_STATE_ACTIVE)" in out
