"""Create a session with metadata (base64-encoded JSON) and read it back decoded."""

from __future__ import annotations

import sys

from _common import client, decode_json, encode_json
from zitadel_client.models import (
    SessionServiceChecks,
    SessionServiceCheckUser,
    SessionServiceCreateSessionRequest,
    SessionServiceGetSessionRequest,
)


def main(login_name: str) -> None:
    api = client()
    created = api.sessions.create_session(SessionServiceCreateSessionRequest(
        checks=SessionServiceChecks(user=SessionServiceCheckUser(login_name=login_name)),
        metadata={
            "ip_address": encode_json("203.0.113.7"),
            "device": encode_json({"type": "laptop", "os": "Debian"}),
            "app_version": encode_json("2.4.1"),
        },
    ))
    session = api.sessions.get_session(SessionServiceGetSessionRequest(
        session_id=created.session_id, session_token=created.session_token)).session
    print(f"Session {created.session_id} metadata:")
    for key, value in sorted(session.metadata.items()):
        print(f"  {key} = {decode_json(value)!r}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "alice")
