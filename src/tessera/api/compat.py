"""Request shapes the official SDKs send that differ from the protos, accepted as they come.

zitadel-client 4.1.9 models CreateUser's ``human.password`` with the SetPassword message, so it
sends ``{"password": {"password": {"password": "…", "changeRequired": false}}}`` (or
``{"password": {"hashedPassword": {…}}}``). Tessera rewrites that to the proto's shape.
"""

from __future__ import annotations

import json
from typing import Any

from connectrpc.codec import proto_json_codec
from protobuf import Message

from ..gen.zitadel.user.v2.user_service_pb import CreateUserRequest


def _create_user(data: dict[str, Any]) -> dict[str, Any]:
    human = data.get("human")
    if not isinstance(human, dict):
        return data
    password = human.get("password")
    if isinstance(password, dict):
        inner = password.get("password")
        if isinstance(inner, dict):
            human["password"] = inner
        elif "hashedPassword" in password or "hashed_password" in password:
            human.pop("password")
            human["hashedPassword"] = password.get("hashedPassword", password.get("hashed_password"))
    return data


_NORMALIZERS = {CreateUserRequest: _create_user}


def normalize(message_class: type[Message], data: dict[str, Any]) -> dict[str, Any]:
    fix = _NORMALIZERS.get(message_class)  # type: ignore[call-overload]
    return fix(data) if fix else data


class TolerantJSONCodec:
    """Connect's JSON codec, with the SDK shape fixes above applied before decoding."""

    def __init__(self) -> None:
        self._inner = proto_json_codec()

    def name(self) -> str:
        return "json"

    def encode(self, message: Message) -> bytes:
        return self._inner.encode(message)

    def decode(self, data: bytes | bytearray, message_class: type[Message]) -> Message:
        if message_class in _NORMALIZERS:
            decoded = json.loads(data)
            if isinstance(decoded, dict):
                data = json.dumps(normalize(message_class, decoded)).encode()
        return self._inner.decode(data, message_class)
