"""Removing expired sessions: on demand (``tessera sessions prune``) and periodically in the server.

Only sessions whose expiration lies before the cut-off, and the tombstones of sessions that ended
before it, are deleted, in small batches, so pruning never touches a live session and never holds long
locks while the server serves. Each deletion is recorded as a ``session.pruned`` audit event.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime

from ..clock import from_datetime, now_us
from .service import SessionService

log = logging.getLogger("tessera.pruning")

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_cutoff(text: str, *, now: int | None = None) -> int:
    """``7d``/``24h``/``30m``/``90s`` mean that long ago; otherwise an ISO 8601 time (UTC if no zone)."""
    now = now_us() if now is None else now
    match = _DURATION.match(text.strip())
    if match:
        return now - int(match.group(1)) * _UNIT_SECONDS[match.group(2)] * 1_000_000
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a duration (like 7d, 24h) or an ISO 8601 time: {text!r}") from None
    return from_datetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


async def prune_periodically(sessions: SessionService, interval_seconds: int, retention_seconds: int) -> None:
    """Every ``interval_seconds``, delete sessions expired more than ``retention_seconds`` ago."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            deleted = await sessions.prune_expired(now_us() - retention_seconds * 1_000_000)
        except Exception:
            log.exception("pruning expired sessions failed; will retry")
            continue
        if deleted:
            log.info("pruned %d expired or ended sessions", deleted)
