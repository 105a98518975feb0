"""Enum values in JSON requests: unknown names and undefined numbers are ``invalid_argument``.

Connect's JSON codec and the REST router parse with ``ignore_unknown_fields=True`` so that fields a
newer client sends are ignored; but protobuf-py then also drops enum values it does not know, so a
misspelt ``sortingColumn`` would silently become the default. ``check_enums`` walks the decoded JSON
against the request's descriptor before it is parsed and rejects such values, naming the field.
Unknown fields stay ignored, and well-known types (``google.protobuf.*``) are left to the parser.

It runs on every JSON request, so the fields that can hold an enum (directly, or in nested messages,
lists, maps and oneofs) are worked out once per message type; a message without any costs one lookup.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from protobuf import (
    DescEnum,
    DescFieldValueEnum,
    DescFieldValueList,
    DescFieldValueMap,
    DescFieldValueMessage,
    DescMessage,
    Message,
)

from ..errors import TesseraError, invalid_argument

ERROR_ID = "API-ENUM1"  # the same ID the handlers use for undefined enum numbers in binary requests
_MAX_DEPTH = 100  # protobuf-py's own nesting limit for messages
_SHOWABLE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DECIMAL = re.compile(r"^-?[0-9]{1,10}$")


class _Kind(enum.Enum):
    SINGLE = 1
    LIST = 2
    MAP = 3


@dataclass(frozen=True, slots=True)
class _Enum:
    names: frozenset[str]  # proto names and JSON names of the values
    numbers: frozenset[int]


@dataclass(frozen=True, slots=True)
class _Slot:
    """A field that holds an enum, or a message in which an enum can occur."""

    kind: _Kind
    enum: _Enum | None
    message: str | None  # the nested message's type name when ``enum`` is None


_Plan = dict[str, _Slot]  # JSON key (proto name and JSON name) -> slot; empty: nothing to check

_PLANS: dict[str, _Plan] = {}  # by message type name
_BY_CLASS: dict[type[Message], _Plan] = {}


def check_enums(message_class: type[Message], data: Any, *, numeric_strings: bool = False) -> None:
    """Raise ``invalid_argument`` (API-ENUM1) if ``data`` holds an enum value the message type does not define.

    ``numeric_strings`` also accepts a defined number written as a string (``"1"``), as grpc-gateway
    does for query parameters, and replaces it by the number so that the parser takes it.
    Values of the wrong JSON type are left alone: the parser reports those.
    """
    plan = _BY_CLASS.get(message_class)
    if plan is None:
        plan = _BY_CLASS[message_class] = plan_for(message_class.desc())
    if plan and isinstance(data, dict):
        _walk(plan, data, "", numeric_strings, 0)


def plan_for(desc: DescMessage) -> _Plan:
    """The enum-bearing fields of ``desc`` (computed with every message reachable from it, then cached)."""
    plan = _PLANS.get(desc.type_name)
    if plan is None:
        _plan_reachable(desc)
        plan = _PLANS[desc.type_name]
    return plan


def _is_wkt(desc: DescMessage | DescEnum) -> bool:
    return desc.type_name.startswith("google.protobuf.")


def _element(field_value: Any) -> tuple[_Kind, DescMessage | DescEnum | None]:
    """What a field holds: its kind and its message or enum type (None for scalars)."""
    match field_value:
        case DescFieldValueEnum():
            return _Kind.SINGLE, field_value.enum
        case DescFieldValueMessage():
            return _Kind.SINGLE, field_value.message
        case DescFieldValueList():
            element = field_value.element
            return _Kind.LIST, element if isinstance(element, (DescMessage, DescEnum)) else None
        case DescFieldValueMap():
            value = field_value.value
            return _Kind.MAP, value if isinstance(value, (DescMessage, DescEnum)) else None
    return _Kind.SINGLE, None


def _plan_reachable(root: DescMessage) -> None:
    # Every message reachable from the root (messages can be recursive, so this is a graph)...
    reachable: dict[str, DescMessage] = {}
    pending = [root]
    while pending:
        desc = pending.pop()
        if desc.type_name in reachable or desc.type_name in _PLANS or _is_wkt(desc):
            continue
        reachable[desc.type_name] = desc
        for field in desc.fields:
            _, target = _element(field.value)
            if isinstance(target, DescMessage):
                pending.append(target)
    # ...then which of them can hold an enum, to a fixed point.
    has_enum = {name for name, plan in _PLANS.items() if plan}
    changed = True
    while changed:
        changed = False
        for name, desc in reachable.items():
            if name not in has_enum and any(_bears_enum(field.value, has_enum) for field in desc.fields):
                has_enum.add(name)
                changed = True
    plans: dict[str, _Plan] = {root.type_name: {}}  # stays empty for a well-known type
    for name, desc in reachable.items():
        plan: _Plan = {}
        if name in has_enum:
            for field in desc.fields:
                if not _bears_enum(field.value, has_enum):
                    continue
                kind, target = _element(field.value)
                if isinstance(target, DescEnum):
                    slot = _Slot(kind, _enum_values(target), None)
                else:
                    assert target is not None
                    slot = _Slot(kind, None, target.type_name)
                plan[field.name] = plan[field.json_name] = slot
        plans[name] = plan
    _PLANS.update(plans)  # at once: a published plan's nested plans are always there too


def _bears_enum(field_value: Any, has_enum: set[str]) -> bool:
    _, target = _element(field_value)
    if isinstance(target, DescEnum):
        return not _is_wkt(target)  # google.protobuf.NullValue is the parser's business
    return isinstance(target, DescMessage) and target.type_name in has_enum


def _enum_values(desc: DescEnum) -> _Enum:
    names = {value.name for value in desc.values} | {value.json_name for value in desc.values if value.json_name}
    return _Enum(frozenset(names), frozenset(value.number for value in desc.values))


def _walk(plan: _Plan, data: dict[str, Any], prefix: str, numeric_strings: bool, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise RecursionError("JSON is nested too deeply")
    for key, value in data.items():
        slot = plan.get(key)
        if slot is None or value is None:
            continue  # unknown fields are ignored; null clears a field
        path = prefix + key
        if slot.kind is _Kind.SINGLE:
            _check(slot, data, key, path, numeric_strings, depth)
        elif slot.kind is _Kind.LIST:
            if isinstance(value, list):
                for index in range(len(value)):
                    _check(slot, value, index, f"{path}[{index}]", numeric_strings, depth)
        elif isinstance(value, dict):
            for map_key in value:
                shown = map_key if _SHOWABLE.match(map_key) else "…"
                _check(slot, value, map_key, f"{path}[{shown}]", numeric_strings, depth)


def _check(slot: _Slot, container: Any, index: Any, path: str, numeric_strings: bool, depth: int) -> None:
    value = container[index]
    if slot.enum is None:
        if isinstance(value, dict):
            assert slot.message is not None
            _walk(_PLANS[slot.message], value, path + ".", numeric_strings, depth + 1)
        return
    known = slot.enum
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if value not in known.numbers:
            raise _unknown(path, str(value))
    elif isinstance(value, str) and value not in known.names:
        if numeric_strings and _DECIMAL.match(value) and int(value) in known.numbers:
            container[index] = int(value)
            return
        raise _unknown(path, f'"{value}"' if _SHOWABLE.match(value) else "")


def _unknown(path: str, shown: str) -> TesseraError:
    # Only identifier-like values are echoed: anything else could be data sent to the wrong field.
    return invalid_argument(ERROR_ID, f"{path} has an unknown value {shown}".rstrip())
