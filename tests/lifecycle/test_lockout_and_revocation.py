"""Lockout under concurrency, session termination on lock/deactivate/delete, password changes, pruning."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pyotp

from ..conftest import ServerProcess
from ..helpers import PASSWORD, add_human, connect, error_id, session_call, sign_in, tessera_cli


def user_call(server: ServerProcess, method: str, user_id: str, **body: object) -> httpx.Response:
    return connect(server, "UserService", method, {"userId": user_id, **body}, server.admin_pat)


def test_parallel_wrong_passwords_never_exceed_the_limit(server: ServerProcess) -> None:
    tessera_cli(server, "policy", "set", "--max-password-attempts", "3")
    try:
        user = add_human(server)
        body = {"checks": {"user": {"userId": user["id"]}, "password": {"password": "Wrong-passw0rd"}}}
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(lambda _: session_call(server, "CreateSession", body), range(20)))
        codes = [a.json()["code"] for a in answers]
        assert all(a.status_code == 400 for a in answers)
        assert codes.count("invalid_argument") == 3, codes  # at most three attempts were evaluated
        assert codes.count("failed_precondition") == 17
        attempts = sorted(a.json()["details"][0]["debug"]["failedAttempts"]
                          for a in answers if a.json()["code"] == "invalid_argument")
        assert attempts == [1, 2, 3]
        got = user_call(server, "GetUserByID", user["id"]).json()["user"]
        assert got["state"] == "USER_STATE_LOCKED"

        # Even the right password is refused while locked; unlock resets the count.
        locked = session_call(server, "CreateSession", {"checks": {"user": {"userId": user["id"]},
                                                                   "password": {"password": PASSWORD}}})
        assert locked.status_code == 400 and error_id(locked) == "SESSION-Gj4ko"
        assert user_call(server, "UnlockUser", user["id"]).status_code == 200
        wrong = session_call(server, "CreateSession", body)
        assert wrong.json()["details"][0]["debug"]["failedAttempts"] == 1
        assert sign_in(server, user["name"])["sessionToken"]
    finally:
        tessera_cli(server, "policy", "set", "--max-password-attempts", "0")


def test_limit_reaching_attempt_is_invalid_then_failed_precondition(server: ServerProcess) -> None:
    tessera_cli(server, "policy", "set", "--max-password-attempts", "2")
    try:
        user = add_human(server)
        session = session_call(server, "CreateSession", {"checks": {"user": {"userId": user["id"]}}}).json()
        wrong = {"sessionId": session["sessionId"], "checks": {"password": {"password": "Wrong-passw0rd"}}}
        first, second = (session_call(server, "SetSession", wrong) for _ in range(2))
        assert (first.json()["code"], second.json()["code"]) == ("invalid_argument", "invalid_argument")
        # Locking ended the session, so a third attempt cannot even find it.
        third = session_call(server, "SetSession", wrong)
        assert third.status_code == 404
        fresh = session_call(server, "CreateSession", {"checks": {"user": {"userId": user["id"]},
                                                                  "password": {"password": PASSWORD}}})
        assert fresh.json()["code"] == "failed_precondition"
    finally:
        tessera_cli(server, "policy", "set", "--max-password-attempts", "0")


def test_otp_lockout(server: ServerProcess) -> None:
    tessera_cli(server, "policy", "set", "--max-otp-attempts", "2")
    try:
        user = add_human(server)
        secret = user_call(server, "RegisterTOTP", user["id"]).json()["secret"]
        user_call(server, "VerifyTOTPRegistration", user["id"], code=pyotp.TOTP(secret).at(time.time() - 30))
        bad = f"{(int(pyotp.TOTP(secret).now()) + 7) % 1_000_000:06d}"
        for _ in range(2):
            answer = session_call(server, "CreateSession", {"checks": {"user": {"userId": user["id"]},
                                                                       "totp": {"code": bad}}})
            assert answer.status_code == 400 and error_id(answer) == "EVENT-8isk2"
        assert user_call(server, "GetUserByID", user["id"]).json()["user"]["state"] == "USER_STATE_LOCKED"
    finally:
        tessera_cli(server, "policy", "set", "--max-otp-attempts", "0")


def _sessions_of(server: ServerProcess, user_id: str) -> list[dict[str, object]]:
    listed = session_call(server, "ListSessions", {"queries": [{"userIdQuery": {"id": user_id}}]})
    return list(listed.json().get("sessions", []))


def test_lock_deactivate_and_delete_end_all_sessions(server: ServerProcess) -> None:
    for action in ("LockUser", "DeactivateUser", "DeleteUser"):
        user = add_human(server)
        tokens = [sign_in(server, user["name"])["sessionToken"] for _ in range(3)]
        assert len(_sessions_of(server, user["id"])) == 3
        assert user_call(server, action, user["id"]).status_code == 200
        assert _sessions_of(server, user["id"]) == []
        for token in tokens:
            me = httpx.get(f"{server.url}/v2/users/me", headers={"authorization": f"Bearer {token}"})
            assert me.status_code == 401


def test_password_change_removes_the_password_factor_of_older_sessions(server: ServerProcess) -> None:
    user = add_human(server)
    older = sign_in(server, user["name"])
    changed = user_call(server, "SetPassword", user["id"], newPassword={"password": "New-Passw0rd!"})
    assert changed.status_code == 200, changed.text
    newer = sign_in(server, user["name"], password="New-Passw0rd!")
    old_view = session_call(server, "GetSession", {"sessionId": older["sessionId"]}).json()["session"]
    new_view = session_call(server, "GetSession", {"sessionId": newer["sessionId"]}).json()["session"]
    assert "password" not in old_view["factors"] and "user" in old_view["factors"]
    assert "password" in new_view["factors"]
    bearer = httpx.get(f"{server.url}/v2/users/me", headers={"authorization": f"Bearer {older['sessionToken']}"})
    assert bearer.status_code == 401


def test_prune_removes_only_expired_sessions_while_serving(server: ServerProcess) -> None:
    user = add_human(server)
    expired = [sign_in(server, user["name"], lifetime="1s")["sessionId"] for _ in range(3)]
    live = [sign_in(server, user["name"], lifetime="3600s")["sessionId"],
            sign_in(server, user["name"])["sessionId"]]
    time.sleep(1.2)
    out = tessera_cli(server, "sessions", "prune", "--expired-before", "0s")
    assert out.startswith("Deleted ") and int(out.split()[1]) >= 3
    for session_id in expired:
        assert session_call(server, "GetSession", {"sessionId": session_id}).status_code == 404
    for session_id in live:
        assert session_call(server, "GetSession", {"sessionId": session_id}).status_code == 200
    # A cut-off in the future never reaches live sessions.
    tessera_cli(server, "sessions", "prune", "--expired-before", "2999-01-01T00:00:00")
    for session_id in live:
        assert session_call(server, "GetSession", {"sessionId": session_id}).status_code == 200


def test_the_server_prunes_periodically_when_configured(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ..conftest import running_server

    env = {"TESSERA_PRUNE_INTERVAL_SECONDS": "1", "TESSERA_PRUNE_RETENTION_SECONDS": "0"}
    with running_server(tmp_path, "sqlite", extra_env=env) as srv:
        user = add_human(srv)
        short = sign_in(srv, user["name"], lifetime="1s")["sessionId"]
        keep = sign_in(srv, user["name"])["sessionId"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if session_call(srv, "GetSession", {"sessionId": short}).status_code == 404:
                break
            time.sleep(0.3)
        assert session_call(srv, "GetSession", {"sessionId": short}).status_code == 404
        assert session_call(srv, "GetSession", {"sessionId": keep}).status_code == 200
