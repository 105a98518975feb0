"""The audit log: one row per change, written in the same transaction as the state change."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CTE, Insert, bindparam, cast, insert, select

from .direct import Conn, Statement
from .schema import events

_COLUMNS = ("aggregate_type", "aggregate_id", "sequence", "type", "payload", "creator", "created_at")


def insert_statement(prefix: str = "") -> Insert:
    """INSERT of one event, its values bound as ``prefix`` + column name (see ``values``)."""
    # inline(): the database numbers events; nothing needs the new ID back.
    return insert(events).inline().values({name: bindparam(prefix + name) for name in _COLUMNS})


def insert_for_each(changed: CTE, prefix: str = "", *, sequence_from: str | None = None) -> Insert:
    """INSERT of one event per row that ``changed`` (an UPDATE … RETURNING in a WITH) returns, so that a
    conditional update and its event are one statement: nothing is recorded when nothing changed.

    Values are bound as in ``insert_statement``; with ``sequence_from`` the event's sequence is that
    column of the changed row instead (an update that counts the sequence up itself).
    """
    def value(name: str) -> Any:
        if name == "sequence" and sequence_from:
            return changed.c[sequence_from]
        # Typed: in a SELECT list the database cannot infer a parameter's type from the target column.
        return cast(bindparam(prefix + name), events.c[name].type)

    selected = select(*(value(name) for name in _COLUMNS)).select_from(changed)
    return insert(events).inline().from_select(list(_COLUMNS), selected).add_cte(changed)


_INSERT = Statement(insert_statement())


def values(*, aggregate_type: str, aggregate_id: str, sequence: int, event_type: str, creator: str | None,
           at: int, payload: dict[str, Any] | None = None, prefix: str = "") -> dict[str, Any]:
    """The bound values of ``insert_statement(prefix)`` for one event."""
    return {
        prefix + "aggregate_type": aggregate_type,
        prefix + "aggregate_id": aggregate_id,
        prefix + "sequence": sequence,
        prefix + "type": event_type,
        prefix + "payload": json.dumps(payload, separators=(",", ":")) if payload else None,
        prefix + "creator": creator,
        prefix + "created_at": at,
    }


def append(
    conn: Conn,
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
    _INSERT.run(conn, values(aggregate_type=aggregate_type, aggregate_id=aggregate_id, sequence=sequence,
                             event_type=event_type, creator=creator, at=at, payload=payload))


@dataclass(frozen=True, slots=True)
class NewEvent:
    """One event for ``append_many``; the fields mean what ``append``'s arguments mean."""

    aggregate_type: str
    aggregate_id: str
    sequence: int
    event_type: str
    creator: str | None
    at: int
    payload: dict[str, Any] | None = None


def append_many(conn: Conn, new_events: Sequence[NewEvent]) -> None:
    """Record several events with one batched statement (executemany), e.g. one per pruned session."""
    if not new_events:
        return
    _INSERT.run_many(conn, [{
        "aggregate_type": e.aggregate_type,
        "aggregate_id": e.aggregate_id,
        "sequence": e.sequence,
        "type": e.event_type,
        "payload": json.dumps(e.payload, separators=(",", ":")) if e.payload else None,
        "creator": e.creator,
        "created_at": e.at,
    } for e in new_events])
