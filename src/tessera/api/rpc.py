"""The wrapper every RPC handler goes through, whatever the protocol.

It authenticates the caller from the ``authorization`` header, makes the Principal available
to the handler, and turns domain errors into Connect errors (which connectrpc renders for
Connect, gRPC and gRPC-Web, and the REST adapter renders as grpc-gateway JSON).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from ..auth.authenticate import Authenticator
from ..auth.principal import Principal, reset_current, set_current
from ..store.direct import Params, Statement
from .errors import to_connect_error

REQ = TypeVar("REQ")
RES = TypeVar("RES")


class HasHeaders(Protocol):
    @property
    def request_headers(self) -> Any: ...


class Handler(Protocol):
    authenticator: Authenticator


ReadOf = Callable[[Any, Any], "tuple[Statement, Params] | None"]
Wrapped = Callable[[Any, REQ, HasHeaders], Awaitable[RES]]


def rpc(fn: Callable[[Any, REQ, Principal], Awaitable[RES]]) -> Wrapped[REQ, RES]:
    """Authenticate, run ``fn(self, request, principal)``, and translate its errors."""
    return _wrapped(fn, None)


def rpc_reading(read_of: ReadOf) -> Callable[[Callable[..., Awaitable[RES]]], Wrapped[REQ, RES]]:
    """Like ``rpc``, for a handler whose first read does not depend on the caller: ``read_of(self,
    request)`` names it (or None), the authenticator runs it in its own query where it can, and the
    handler gets its rows as ``fn(self, request, principal, rows)`` (None: not read, read them yourself)."""
    return lambda fn: _wrapped(fn, read_of)


def _wrapped(fn: Callable[..., Awaitable[RES]], read_of: ReadOf | None) -> Wrapped[REQ, RES]:
    @functools.wraps(fn)
    async def wrapper(self: Handler, request: REQ, ctx: HasHeaders) -> RES:
        try:
            authorization = ctx.request_headers.get("authorization")
            authenticator = self.authenticator
            read = read_of(self, request) if read_of is not None and authenticator.reads_beside else None
            if read is None:
                principal, rows = await authenticator.authenticate(authorization), None
            else:
                principal, rows = await authenticator.authenticate_and_read(authorization, *read)
            token = set_current(principal)
            try:
                if read_of is None:
                    return await fn(self, request, principal)
                return await fn(self, request, principal, rows)
            finally:
                reset_current(token)
        except Exception as exc:
            raise to_connect_error(exc) from None

    return wrapper
