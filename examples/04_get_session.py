"""Get a session by ID, with its token and without (as its creator)."""

from __future__ import annotations

import sys

from _common import client
from zitadel_client.models import (
    SessionServiceChecks,
    SessionServiceCheckUser,
    SessionServiceCreateSessionRequest,
    SessionServiceGetSessionRequest,
)


def main(login_name: str) -> None:
    api = client()
    created = api.sessions.create_session(SessionServiceCreateSessionRequest(
        checks=SessionServiceChecks(user=SessionServiceCheckUser(login_name=login_name))))
    with_token = api.sessions.get_session(SessionServiceGetSessionRequest(
        session_id=created.session_id, session_token=created.session_token)).session
    without_token = api.sessions.get_session(SessionServiceGetSessionRequest(
        session_id=created.session_id)).session
    print(f"With token:    session {with_token.id}, user {with_token.factors.user.login_name}")
    print(f"Without token: session {without_token.id}, sequence {without_token.sequence}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "alice")
