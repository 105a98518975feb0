"""Domain errors: a stable error ID, a status code and a short English text.

Every failure Tessera reports carries an ID (ZITADEL's where one exists, for example
``COMMAND-3M0fs`` for a wrong password). Protocol adapters render these per wire format.
"""

from __future__ import annotations

import enum


class Code(enum.Enum):
    """The gRPC/Connect status codes Tessera uses, with their numbers and HTTP statuses."""

    CANCELED = ("canceled", 1, 499)
    UNKNOWN = ("unknown", 2, 500)
    INVALID_ARGUMENT = ("invalid_argument", 3, 400)
    DEADLINE_EXCEEDED = ("deadline_exceeded", 4, 504)
    NOT_FOUND = ("not_found", 5, 404)
    ALREADY_EXISTS = ("already_exists", 6, 409)
    PERMISSION_DENIED = ("permission_denied", 7, 403)
    RESOURCE_EXHAUSTED = ("resource_exhausted", 8, 429)
    FAILED_PRECONDITION = ("failed_precondition", 9, 400)
    ABORTED = ("aborted", 10, 409)
    OUT_OF_RANGE = ("out_of_range", 11, 400)
    UNIMPLEMENTED = ("unimplemented", 12, 501)
    INTERNAL = ("internal", 13, 500)
    UNAVAILABLE = ("unavailable", 14, 503)
    DATA_LOSS = ("data_loss", 15, 500)
    UNAUTHENTICATED = ("unauthenticated", 16, 401)

    @property
    def connect_name(self) -> str:
        return self.value[0]

    @property
    def grpc_number(self) -> int:
        return self.value[1]

    @property
    def http_status(self) -> int:
        return self.value[2]


class TesseraError(Exception):
    """A failure with a stable ID; ``message`` never contains secrets."""

    def __init__(self, code: Code, error_id: str, message: str, *, failed_attempts: int | None = None):
        super().__init__(f"{message} ({error_id})" if error_id else message)
        self.code = code
        self.error_id = error_id
        self.text = message
        self.failed_attempts = failed_attempts

    @property
    def wire_message(self) -> str:
        """The message as ZITADEL prints it: the text followed by the ID in parentheses."""
        return f"{self.text} ({self.error_id})" if self.error_id else self.text


def invalid_argument(error_id: str, message: str) -> TesseraError:
    return TesseraError(Code.INVALID_ARGUMENT, error_id, message)


def not_found(error_id: str, message: str) -> TesseraError:
    return TesseraError(Code.NOT_FOUND, error_id, message)


def failed_precondition(error_id: str, message: str) -> TesseraError:
    return TesseraError(Code.FAILED_PRECONDITION, error_id, message)


def permission_denied(error_id: str, message: str) -> TesseraError:
    return TesseraError(Code.PERMISSION_DENIED, error_id, message)


def already_exists(error_id: str, message: str) -> TesseraError:
    return TesseraError(Code.ALREADY_EXISTS, error_id, message)


def unauthenticated(error_id: str = "AUTH-7fs1e", message: str = "Token is invalid") -> TesseraError:
    return TesseraError(Code.UNAUTHENTICATED, error_id, message)


def unavailable(error_id: str, message: str) -> TesseraError:
    return TesseraError(Code.UNAVAILABLE, error_id, message)
