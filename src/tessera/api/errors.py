"""Render domain errors on the wire: Connect errors (also used for gRPC) and grpc-gateway JSON."""

from __future__ import annotations

import json
import logging
import re

from connectrpc.code import Code as WireCode
from connectrpc.errors import ConnectError

from ..errors import Code, TesseraError
from ..gen.zitadel.message_pb import CredentialsCheckError, ErrorDetail

log = logging.getLogger("tessera.api")

_BY_CONNECT_NAME = {code.connect_name: code for code in Code}


def to_connect_error(exc: BaseException) -> ConnectError:
    """Map any failure to a ConnectError; unexpected ones become ``internal`` without details."""
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, TesseraError):
        detail: ErrorDetail | CredentialsCheckError
        if exc.failed_attempts is not None:
            detail = CredentialsCheckError(id=exc.error_id, message=exc.text, failed_attempts=exc.failed_attempts)
        else:
            detail = ErrorDetail(id=exc.error_id, message=exc.text)
        return ConnectError(WireCode(exc.code.connect_name), exc.wire_message, [detail])
    return internal_error("serving a request")


def internal_error(doing: str) -> ConnectError:
    """``internal`` with a generic message and the ID API-INT01; call it in an ``except`` block.

    The exception being handled is logged here with its traceback and never reaches the client
    (connectrpc would otherwise send ``str(exc)`` as an ``unknown`` error).
    """
    log.exception("unexpected error while %s", doing)
    return ConnectError(WireCode.INTERNAL, "Internal error (API-INT01)",
                        [ErrorDetail(id="API-INT01", message="Internal error")])


def code_of(error: ConnectError) -> Code:
    return _BY_CONNECT_NAME.get(error.code.value, Code.UNKNOWN)


def gateway_body(error: ConnectError) -> tuple[int, bytes]:
    """HTTP status and grpc-gateway JSON body (``google.rpc.Status``) for a REST response."""
    code = code_of(error)
    details = []
    for detail in error.details:
        value = detail.value(ErrorDetail) if detail.type_name == "zitadel.v1.ErrorDetail" else None
        if value is None and detail.type_name == "zitadel.v1.CredentialsCheckError":
            value = detail.value(CredentialsCheckError)
        if value is not None:
            entry = json.loads(value.to_json())
            details.append({"@type": "type.googleapis.com/" + detail.type_name, **entry})
    body = {"code": code.grpc_number, "message": error.message, "details": details}
    return code.http_status, json.dumps(body, ensure_ascii=False).encode()


def gateway_error(code: Code, error_id: str, text: str) -> tuple[int, bytes]:
    return gateway_body(to_connect_error(TesseraError(code, error_id, text)))


def body_too_large(limit: int) -> TesseraError:
    """A request body above ``max_body_bytes``; the same error on Connect, gRPC and REST."""
    return TesseraError(Code.RESOURCE_EXHAUSTED, "API-SIZE1", f"Request body is larger than {limit} bytes")


_JSON_TYPE_NAMES = {"int": "number", "float": "number", "str": "string", "bool": "boolean", "list": "array",
                    "dict": "object", "NoneType": "null"}


def undecodable(exc: BaseException) -> TesseraError:
    """A body that is not the request message (bad JSON, wrong types); the parser's reason, shortened.

    The reason is put in JSON terms: no Python type names, no echo of the offending value (which
    could be a password sent in the wrong shape), no interpreter messages.
    """
    if isinstance(exc, RecursionError):
        text = "JSON is nested too deeply"
    elif isinstance(exc, UnicodeError):
        text = "body is not valid UTF-8"
    elif isinstance(exc, (ValueError, TypeError, KeyError, OverflowError)) and str(exc):
        text = str(exc).splitlines()[0]
        text = re.sub(r"<class '(\w+)'>", lambda m: _JSON_TYPE_NAMES.get(m[1], "value"), text)
        text = re.sub(r" from JSON: .*?(?= for field |$)", " from JSON", text)
    else:
        text = "malformed request"
    return TesseraError(Code.INVALID_ARGUMENT, "API-JSON1", f"Request could not be decoded: {text[:200]}")
