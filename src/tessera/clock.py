"""Time as integer microseconds since the Unix epoch, the unit stored in the database."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_us() -> int:
    return time.time_ns() // 1000


def to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def from_datetime(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1_000_000)


def rfc3339(us: int) -> str:
    return to_datetime(us).isoformat(timespec="microseconds").replace("+00:00", "Z")
