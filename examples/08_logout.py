"""Delete one session, then log a user out everywhere (list their sessions, delete each)."""

from __future__ import annotations

import sys

from _common import client
from zitadel_client.models import (
    SessionServiceChecks,
    SessionServiceCheckUser,
    SessionServiceCreateSessionRequest,
    SessionServiceDeleteSessionRequest,
    SessionServiceListSessionsRequest,
    SessionServiceSearchQuery,
    SessionServiceUserIDQuery,
)


def main(login_name: str, user_id: str) -> None:
    api = client()
    one = api.sessions.create_session(SessionServiceCreateSessionRequest(
        checks=SessionServiceChecks(user=SessionServiceCheckUser(login_name=login_name))))
    api.sessions.delete_session(SessionServiceDeleteSessionRequest(
        session_id=one.session_id, session_token=one.session_token))
    print(f"Deleted session {one.session_id}")

    by_user = [SessionServiceSearchQuery(user_id_query=SessionServiceUserIDQuery(id=user_id))]
    sessions = api.sessions.list_sessions(SessionServiceListSessionsRequest(queries=by_user)).sessions or []
    for session in sessions:
        api.sessions.delete_session(SessionServiceDeleteSessionRequest(session_id=session.id))
    left = int(api.sessions.list_sessions(SessionServiceListSessionsRequest(queries=by_user)).details.total_result or 0)
    print(f"Logged out everywhere: deleted {len(sessions)} sessions, {left} left")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
