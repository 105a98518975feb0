"""A ``login(username, password)`` function returning success and the session, or a failure message."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from _common import client
from zitadel_client.exceptions import ApiError
from zitadel_client.models import (
    SessionServiceCheckPassword,
    SessionServiceChecks,
    SessionServiceCheckUser,
    SessionServiceCreateSessionRequest,
)


@dataclass
class LoginResult:
    ok: bool
    session_id: str = ""
    session_token: str = ""
    message: str = ""


def login(username: str, password: str) -> LoginResult:
    try:
        created = client().sessions.create_session(SessionServiceCreateSessionRequest(
            checks=SessionServiceChecks(user=SessionServiceCheckUser(login_name=username),
                                        password=SessionServiceCheckPassword(password=password)),
            lifetime="3600s"))
    except ApiError as error:
        body = error.response_body if isinstance(error.response_body, dict) else {}
        reasons = {404: "unknown user", 400: "wrong password or inactive user"}
        return LoginResult(False, message=f"login failed: {reasons.get(error.code, 'error')} "
                                          f"({body.get('message', error.code)})")
    return LoginResult(True, created.session_id, created.session_token, "login succeeded")


if __name__ == "__main__":
    result = login(sys.argv[1], sys.argv[2])
    print(result.message)
    if result.ok:
        print(f"Session {result.session_id}")
    sys.exit(0 if result.ok else 1)
