"""Request shapes the official SDKs send that differ from the protos, accepted as they come.

zitadel-client 4.1.9 models CreateUser's ``human.password`` with the SetPassword message, so it
sends ``{"password": {"password": {"password": "…", "changeRequired": false}}}`` (or
``{"password": {"hashedPassword": {…}}}``). Tessera rewrites that to the proto's shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from connectrpc.codec import proto_binary_codec, proto_json_codec
from protobuf import Message

from ..errors import TesseraError
from ..gen.zitadel.user.v2.user_service_pb import CreateUserRequest
from .errors import internal_error, to_connect_error, undecodable
from .json_validation import check_enums


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


_NORMALIZERS: dict[type[Message], Callable[[dict[str, Any]], dict[str, Any]]] = {CreateUserRequest: _create_user}


def normalize(message_class: type[Message], data: dict[str, Any]) -> dict[str, Any]:
    fix = _NORMALIZERS.get(message_class)
    return fix(data) if fix else data


def encode_response(encode: Callable[[Message], bytes], message: Message) -> bytes:
    """Encode a response; a failure (e.g. a Timestamp out of range) is ``internal`` (API-INT01), logged.

    Encoding runs after the RPC wrapper, so without this connectrpc would answer ``unknown`` with the
    exception's text.
    """
    try:
        return encode(message)
    except Exception:
        raise internal_error(f"encoding a {type(message).__name__}") from None


class TolerantJSONCodec:
    """Connect's JSON codec, with the SDK shape fixes above applied before decoding.

    A body that cannot be decoded is ``invalid_argument`` with the ID API-JSON1, as on REST; an
    unknown enum value is ``invalid_argument`` API-ENUM1 (unknown fields are ignored).
    """

    def __init__(self) -> None:
        self._inner = proto_json_codec()

    def name(self) -> str:
        return "json"

    def encode(self, message: Message) -> bytes:
        return encode_response(self._inner.encode, message)

    def decode(self, data: bytes | bytearray, message_class: type[Message]) -> Message:
        try:
            # The stdlib parser fails cleanly (RecursionError) on absurdly deep nesting, which
            # crashes protobuf-py's parser outright; so every body goes through it first.
            decoded = json.loads(data)
            if isinstance(decoded, dict):
                if message_class in _NORMALIZERS:
                    decoded = normalize(message_class, decoded)
                    data = json.dumps(decoded).encode()
                check_enums(message_class, decoded)
            message: Message = self._inner.decode(data, message_class)
        except TesseraError as exc:
            raise to_connect_error(exc) from None
        except Exception as exc:
            raise to_connect_error(undecodable(exc)) from None
        return message


class CheckedBinaryCodec:
    """Connect's binary protobuf codec, reporting undecodable bodies with an error ID."""

    def __init__(self) -> None:
        self._inner = proto_binary_codec()

    def name(self) -> str:
        return "proto"

    def encode(self, message: Message) -> bytes:
        return encode_response(self._inner.encode, message)

    def decode(self, data: bytes | bytearray, message_class: type[Message]) -> Message:
        try:
            message: Message = self._inner.decode(data, message_class)
        except Exception as exc:
            raise to_connect_error(undecodable(exc)) from None
        return message
