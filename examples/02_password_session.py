"""Create a session with a user and a password check."""

from __future__ import annotations

import sys

from _common import client
from zitadel_client.models import (
    SessionServiceCheckPassword,
    SessionServiceChecks,
    SessionServiceCheckUser,
    SessionServiceCreateSessionRequest,
    SessionServiceGetSessionRequest,
)


def main(login_name: str, password: str) -> None:
    api = client()
    created = api.sessions.create_session(SessionServiceCreateSessionRequest(
        checks=SessionServiceChecks(user=SessionServiceCheckUser(login_name=login_name),
                                    password=SessionServiceCheckPassword(password=password)),
    ))
    session = api.sessions.get_session(SessionServiceGetSessionRequest(
        session_id=created.session_id, session_token=created.session_token)).session
    print(f"Session {created.session_id} for {session.factors.user.login_name}")
    print(f"Password verified at {session.factors.password.verified_at.isoformat()}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
