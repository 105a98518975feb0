"""``GET /v2/users/me`` and ``GET /auth/v1/users/me``: the caller's own user.

Any valid bearer works: a session token, a PAT or an OAuth access token. The answer has the
shape of GetUserByID's response.
"""

from __future__ import annotations

from typing import Any

from connectrpc.errors import ConnectError

from ..auth.authenticate import Authenticator
from ..errors import Code
from ..gen.zitadel.user.v2 import user_service_pb as pb
from ..users.service import UserService
from .errors import gateway_body, gateway_error, to_connect_error
from .rest import Receive, Send, respond
from .user_handlers import user_message


def _authorization(scope: dict[str, Any]) -> str | None:
    """The ``Authorization`` header (ASGI names are lower case; a second one was refused before)."""
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            return str(value.decode("latin-1"))
    return None


class MeEndpoint:
    def __init__(self, users: UserService, authenticator: Authenticator) -> None:
        self.users = users
        self.authenticator = authenticator

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["method"] != "GET":
            await respond(send, *gateway_error(Code.UNIMPLEMENTED, "API-MTH01", "Method Not Allowed"), 405)
            return
        try:
            principal = await self.authenticator.authenticate(_authorization(scope))
            user = principal.user or await self.users.get(principal, principal.user_id)
            message = user_message(user)
            body = pb.GetUserByIDResponse(details=message.details, user=message).to_json().encode()
        except Exception as exc:  # encoding too: its failure is internal (API-INT01), never its text
            error: ConnectError = to_connect_error(exc)
            await respond(send, *gateway_body(error))
            return
        await respond(send, 200, body)
