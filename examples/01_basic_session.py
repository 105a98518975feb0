"""Create a session with a user check and a 5-hour lifetime."""

from __future__ import annotations

import sys

from _common import client
from zitadel_client.models import (
    SessionServiceChecks,
    SessionServiceCheckUser,
    SessionServiceCreateSessionRequest,
)


def main(login_name: str) -> None:
    response = client().sessions.create_session(SessionServiceCreateSessionRequest(
        checks=SessionServiceChecks(user=SessionServiceCheckUser(login_name=login_name)),
        lifetime="18000s",
    ))
    print(f"Session created: {response.session_id}")
    print(f"Session token:   {response.session_token}")
    print(f"Sequence:        {response.details.sequence}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "alice")
