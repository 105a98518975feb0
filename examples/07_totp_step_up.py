"""Add a TOTP check to an existing session (MFA step-up).

Needs a user whose TOTP is registered; pass the TOTP secret so the example can compute a code
(a real application asks the user for it).
"""

from __future__ import annotations

import sys

import pyotp
from _common import client
from zitadel_client.models import (
    SessionServiceCheckPassword,
    SessionServiceChecks,
    SessionServiceCheckTOTP,
    SessionServiceCheckUser,
    SessionServiceCreateSessionRequest,
    SessionServiceGetSessionRequest,
    SessionServiceSetSessionRequest,
)


def main(login_name: str, password: str, totp_secret: str) -> None:
    api = client()
    created = api.sessions.create_session(SessionServiceCreateSessionRequest(
        checks=SessionServiceChecks(user=SessionServiceCheckUser(login_name=login_name),
                                    password=SessionServiceCheckPassword(password=password))))
    stepped_up = api.sessions.set_session(SessionServiceSetSessionRequest(
        session_id=created.session_id,
        checks=SessionServiceChecks(totp=SessionServiceCheckTOTP(code=pyotp.TOTP(totp_secret).now()))))
    session = api.sessions.get_session(SessionServiceGetSessionRequest(
        session_id=created.session_id, session_token=stepped_up.session_token)).session
    print(f"Session {session.id}: password and TOTP verified")
    print(f"TOTP verified at {session.factors.totp.verified_at.isoformat()}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
