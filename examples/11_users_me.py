"""Sign in, then call ``GET /v2/users/me`` with the session token as the bearer and print the user."""

from __future__ import annotations

import json
import sys
import urllib.request

from _common import client, url
from zitadel_client.models import (
    SessionServiceCheckPassword,
    SessionServiceChecks,
    SessionServiceCheckUser,
    SessionServiceCreateSessionRequest,
)


def main(login_name: str, password: str) -> None:
    session = client().sessions.create_session(SessionServiceCreateSessionRequest(
        checks=SessionServiceChecks(user=SessionServiceCheckUser(login_name=login_name),
                                    password=SessionServiceCheckPassword(password=password))))
    request = urllib.request.Request(f"{url()}/v2/users/me",
                                     headers={"Authorization": f"Bearer {session.session_token}"})
    with urllib.request.urlopen(request) as response:  # noqa: S310 (the URL is the configured Tessera)
        user = json.load(response)["user"]
    print(f"Signed in as {user['preferredLoginName']} (user {user['userId']}, {user['state']})")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
