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
from .errors import to_connect_error

REQ = TypeVar("REQ")
RES = TypeVar("RES")


class HasHeaders(Protocol):
    @property
    def request_headers(self) -> Any: ...


class Handler(Protocol):
    authenticator: Authenticator


def rpc(
    fn: Callable[[Any, REQ, Principal], Awaitable[RES]],
) -> Callable[[Any, REQ, HasHeaders], Awaitable[RES]]:
    """Authenticate, run ``fn(self, request, principal)``, and translate its errors."""

    @functools.wraps(fn)
    async def wrapper(self: Handler, request: REQ, ctx: HasHeaders) -> RES:
        try:
            principal = await self.authenticator.authenticate(ctx.request_headers.get("authorization"))
            token = set_current(principal)
            try:
                return await fn(self, request, principal)
            finally:
                reset_current(token)
        except Exception as exc:
            raise to_connect_error(exc) from None

    return wrapper
