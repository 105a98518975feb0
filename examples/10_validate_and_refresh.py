"""``validate_and_refresh(session_id, token)``: report expired sessions, extend those about to expire.

A session expiring within 5 minutes is extended by one hour and the new token is returned.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from _common import client
from zitadel_client.exceptions import ApiError
from zitadel_client.models import SessionServiceGetSessionRequest, SessionServiceSetSessionRequest


def validate_and_refresh(session_id: str, token: str) -> tuple[str, str]:
    """Returns (status, token): status is "expired", "invalid", "refreshed" or "valid"."""
    api = client()
    try:
        session = api.sessions.get_session(SessionServiceGetSessionRequest(
            session_id=session_id, session_token=token)).session
    except ApiError:
        return "invalid", token
    expires = session.expiration_date
    now = datetime.now(UTC)
    if expires is not None and expires <= now:
        return "expired", token
    if expires is not None and expires - now < timedelta(minutes=5):
        updated = api.sessions.set_session(SessionServiceSetSessionRequest(session_id=session_id, lifetime="3600s"))
        return "refreshed", updated.session_token
    return "valid", token


if __name__ == "__main__":
    status, new_token = validate_and_refresh(sys.argv[1], sys.argv[2])
    print(f"Session {sys.argv[1]} is {status}")
    if status == "refreshed":
        print(f"New token: {new_token}")
