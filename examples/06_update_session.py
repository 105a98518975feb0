"""Update a session's lifetime, then add metadata, each time switching to the new token."""

from __future__ import annotations

import sys

from _common import client, encode_json
from zitadel_client.models import (
    SessionServiceChecks,
    SessionServiceCheckUser,
    SessionServiceCreateSessionRequest,
    SessionServiceGetSessionRequest,
    SessionServiceSetSessionRequest,
)


def main(login_name: str) -> None:
    api = client()
    created = api.sessions.create_session(SessionServiceCreateSessionRequest(
        checks=SessionServiceChecks(user=SessionServiceCheckUser(login_name=login_name)), lifetime="600s"))
    token = created.session_token
    extended = api.sessions.set_session(SessionServiceSetSessionRequest(
        session_id=created.session_id, lifetime="7200s"))
    token = extended.session_token  # the previous token stopped working
    print(f"Lifetime extended; new token ends in …{token[-6:]}")
    tagged = api.sessions.set_session(SessionServiceSetSessionRequest(
        session_id=created.session_id, metadata={"theme": encode_json("dark")}))
    token = tagged.session_token
    session = api.sessions.get_session(SessionServiceGetSessionRequest(
        session_id=created.session_id, session_token=token)).session
    print(f"Metadata added; sequence now {session.sequence}, expires {session.expiration_date.isoformat()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "alice")
