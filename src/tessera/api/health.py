"""The standard gRPC health service (grpc.health.v1.Health), served on every protocol.

A service is SERVING while the database answers and NOT_SERVING while it does not, which is
what a load balancer needs to know: without its database a Tessera process can answer nothing.
Health checks need no credentials.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError

from ..gen.grpc.health.v1.health_pb import (
    HealthCheckRequest,
    HealthCheckResponse,
    HealthListRequest,
    HealthListResponse,
)

_SERVING = HealthCheckResponse.ServingStatus.SERVING
_NOT_SERVING = HealthCheckResponse.ServingStatus.NOT_SERVING
_SERVICE_UNKNOWN = HealthCheckResponse.ServingStatus.SERVICE_UNKNOWN


class HealthService:
    """Answers Check, List and Watch from one readiness probe (a database ping)."""

    def __init__(self, ready: Callable[[], Awaitable[bool]], services: Iterable[str],
                 *, watch_interval: float = 2.0) -> None:
        self._ready = ready
        self._services = set(services)
        self._watch_interval = watch_interval

    async def _status(self) -> HealthCheckResponse.ServingStatus:
        return _SERVING if await self._ready() else _NOT_SERVING

    async def check(self, request: HealthCheckRequest, ctx: Any, /) -> HealthCheckResponse:
        if request.service and request.service not in self._services:
            raise ConnectError(Code.NOT_FOUND, f"unknown service {request.service!r}")
        return HealthCheckResponse(status=await self._status())

    async def list(self, request: HealthListRequest, ctx: Any, /) -> HealthListResponse:
        status = await self._status()
        names = ["", *sorted(self._services)]
        return HealthListResponse(statuses={name: HealthCheckResponse(status=status) for name in names})

    async def watch(self, request: HealthCheckRequest, ctx: Any, /) -> AsyncIterator[HealthCheckResponse]:
        # As the protocol asks: an unknown service is reported, not refused, and the call stays
        # open (a service of that name might appear later; here it never does).
        known = not request.service or request.service in self._services
        last: HealthCheckResponse.ServingStatus | None = None
        while True:
            status = await self._status() if known else _SERVICE_UNKNOWN
            if status != last:
                yield HealthCheckResponse(status=status)
                last = status
            await asyncio.sleep(self._watch_interval)
