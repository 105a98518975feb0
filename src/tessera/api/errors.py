"""Render domain errors on the wire: Connect errors (also used for gRPC) and grpc-gateway JSON."""

from __future__ import annotations

import json
import logging

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
    log.exception("unexpected error while serving a request")
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
