"""The audit log: one row per change, written in the same transaction as the state change."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, insert

from .schema import events


def append(
    conn: Connection,
    *,
    aggregate_type: str,
    aggregate_id: str,
    sequence: int,
    event_type: str,
    creator: str | None,
    at: int,
    payload: dict[str, Any] | None = None,
) -> None:
    """Record one event. Payloads describe what changed and never hold secrets."""
    conn.execute(
        insert(events).values(
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            sequence=sequence,
            type=event_type,
            payload=json.dumps(payload, separators=(",", ":")) if payload else None,
            creator=creator,
            created_at=at,
        )
    )
