"""Conversions between wire messages and domain values shared by every adapter."""

from __future__ import annotations

import enum
from typing import TypeVar

from protobuf.wkt.google.protobuf.duration_pb import Duration
from protobuf.wkt.google.protobuf.timestamp_pb import Timestamp

from ..errors import invalid_argument
from ..gen.zitadel.object.v2 import object_pb
from ..users.model import WriteDetails
from ..users.queries import Page

E = TypeVar("E", bound=enum.Enum)

_MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z, the largest valid protobuf Timestamp
_MAX_OFFSET = 2**63 - 1  # uint64 on the wire, but SQL offsets are signed 64-bit integers


def timestamp(us: int | None) -> Timestamp | None:
    if us is None:
        return None
    return Timestamp(seconds=us // 1_000_000, nanos=(us % 1_000_000) * 1000)


def micros(ts: Timestamp | None) -> int | None:
    """Microseconds of a Timestamp; None when it is unset or zero."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    if not (-62_135_596_800 <= ts.seconds <= _MAX_SECONDS) or not (0 <= ts.nanos < 1_000_000_000):
        raise invalid_argument("API-TS001", "Timestamp is out of range")
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def duration_micros(d: Duration | None) -> int | None:
    if d is None:
        return None
    if abs(d.seconds) > 315_576_000_000 or abs(d.nanos) >= 1_000_000_000:
        raise invalid_argument("API-DUR01", "Duration is out of range")
    return d.seconds * 1_000_000 + d.nanos // 1000


def details(d: WriteDetails) -> object_pb.Details:
    return object_pb.Details(
        sequence=d.sequence,
        change_date=timestamp(d.change_date),
        resource_owner=d.resource_owner,
        creation_date=timestamp(d.creation_date),
    )


def page(offset: int, limit: int, asc: bool, *, default_limit: int, max_limit: int) -> Page:
    """Paging with ZITADEL's rules: 0 means the default, above the maximum is an error."""
    if limit > max_limit:
        raise invalid_argument("QUERY-4M0fs", f"Limit exceeds the maximum of {max_limit}")
    if offset > _MAX_OFFSET:
        raise invalid_argument("QUERY-0ffs1", f"Offset exceeds the maximum of {_MAX_OFFSET}")
    return Page(offset=offset, limit=limit or default_limit, asc=asc)


def list_details(total: int, timestamp_us: int) -> object_pb.ListDetails:
    return object_pb.ListDetails(total_result=total, timestamp=timestamp(timestamp_us))


def enum_value(kind: type[E], number: int, field: str) -> E:
    """The enum member for a wire enum number; numbers the enum does not define are invalid.

    Generated enums accept any number (proto3 enums are open), so membership is checked here.
    """
    if int(number) not in {member.value for member in kind}:
        raise invalid_argument("API-ENUM1", f"{field} has an unknown value {int(number)}")
    return kind(int(number))
