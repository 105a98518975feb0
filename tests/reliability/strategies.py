"""Hypothesis strategies for hostile requests, driven by the protobuf descriptors.

``message_json(desc)`` draws a JSON object shaped like the request message, where every field may
instead get a hostile value: the wrong JSON type, a huge string, an unknown enum name, an absurd
number, invalid base64, a negative or absurd duration or timestamp, a huge map or list, NUL and
non-ASCII text. Strings are often drawn from ``pool`` (IDs of real users, sessions and
organizations) so that requests reach past validation into the services and the store.
"""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import strategies as st
from protobuf import ScalarType
from protobuf._descriptors import DescEnum, DescFieldValueEnum, DescFieldValueList, DescFieldValueMap, DescMessage

MAX_DEPTH = 6

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
any_json = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)

huge_strings = st.sampled_from([1_000, 70_000, 300_000]).map(lambda n: "x" * n)
odd_text = st.sampled_from(["", " ", "\x00", "a\x00b", "\u202e", "é", "😀", "'; DROP TABLE users; --", "%s%n",
                            "../../etc/passwd", "${jndi:ldap://x}", "{{7*7}}", "null", "true", "0", "-1",
                            "tses_1.x", "tpat_x", "\t\n"])
numbers_as_text = st.sampled_from(["18446744073709551616", "9223372036854775808", "-9223372036854775809",
                                   "1e400", "NaN", "Infinity", "-0", "0x10", "1.5", ""])
absurd_numbers = st.sampled_from([-1, -(2**31), 2**31, 2**32, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**30,
                                  1.5, -0.0, 1e308])
durations = st.sampled_from(["-5s", "-0.000000001s", "0s", "0.5s", "1s", "315576000000s", "315576000001s",
                             "-315576000001s", "1e400s", "99999999999999999999s", "5", "s", "1m", "1.0000000001s",
                             "18000s", " 1s"])
timestamps = st.sampled_from(["1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z",
                              "10000-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
                              "2024-02-30T00:00:00Z", "2024-01-01T00:00:00+25:00", "2024-01-01",
                              "2024-01-01T00:00:00.1234567891Z", "yesterday", "-1", "2038-01-19T03:14:08Z"])
base64_values = st.one_of(
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    st.sampled_from(["!!!", "a", "ab=c", "====", "YQ", "YQ==YQ==", "\x00", "é"]),
    st.sampled_from([4096, 4097, 100_000]).map(lambda n: base64.b64encode(b"v" * n).decode()),
)


def strings(pool: list[str], depth: int = 0) -> st.SearchStrategy[Any]:
    real = st.sampled_from(pool) if pool else st.nothing()
    if depth > 0:  # huge values only at the top: repeated inside lists they would need gigabytes
        return st.one_of(real, real, st.text(max_size=30), odd_text)
    return st.one_of(real, real, st.text(max_size=30), odd_text, huge_strings)


def _scalar(kind: ScalarType, pool: list[str], depth: int = 0) -> st.SearchStrategy[Any]:
    if kind == ScalarType.STRING:
        return strings(pool, depth)
    if kind == ScalarType.BYTES:
        return base64_values
    if kind == ScalarType.BOOL:
        return st.one_of(st.booleans(), st.sampled_from(["true", 1, 0, "yes"]))
    if kind in (ScalarType.FLOAT, ScalarType.DOUBLE):
        return st.one_of(st.floats(), st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999"]))
    return st.one_of(st.integers(min_value=-10, max_value=1000), absurd_numbers, numbers_as_text,
                     st.integers(min_value=0, max_value=2**64).map(str))


def _enum(enum: DescEnum) -> st.SearchStrategy[Any]:
    names = [v.name for v in enum.values]
    numbers = [v.number for v in enum.values]
    return st.one_of(st.sampled_from(names), st.sampled_from(numbers),
                     st.sampled_from(["UNKNOWN_ENUM_NAME", names[0].lower(), "", "1"]),
                     st.sampled_from([-1, 99, 2**31, 2**40]))


def _wkt(type_name: str, depth: int) -> st.SearchStrategy[Any] | None:
    if type_name == "google.protobuf.Duration":
        return durations
    if type_name == "google.protobuf.Timestamp":
        return timestamps
    if type_name == "google.protobuf.Struct":
        return st.dictionaries(st.text(max_size=8), any_json, max_size=5)
    if type_name in ("google.protobuf.Value", "google.protobuf.ListValue"):
        return any_json
    return None


def _value(value: Any, pool: list[str], depth: int) -> st.SearchStrategy[Any]:
    """A strategy for one field value descriptor (singular, list or map)."""
    if isinstance(value, DescFieldValueList):
        element = _element(value.element, pool, depth + 1)
        if depth > 0:
            return st.one_of(st.lists(element, max_size=4), st.just([]))
        copies = 50 if isinstance(value.element, DescMessage) else 300
        return st.one_of(st.lists(element, max_size=4), st.just([]), element.map(lambda e: [e] * copies))
    if isinstance(value, DescFieldValueMap):
        key = _scalar(value.key, pool, depth + 1)
        val = _element(value.value, pool, depth + 1)
        small = st.dictionaries(key.filter(lambda k: isinstance(k, str)), val, max_size=4)
        if depth > 0:
            return small
        huge = st.integers(min_value=51, max_value=2000).map(lambda n: {f"k{i}": "dg==" for i in range(n)})
        return st.one_of(small, huge)
    if isinstance(value, DescFieldValueEnum):
        return _enum(value.enum)
    message = getattr(value, "message", None)
    if message is not None:
        return message_json(message, pool, depth + 1)
    return _scalar(value.scalar, pool, depth)


def _element(element: Any, pool: list[str], depth: int) -> st.SearchStrategy[Any]:
    if isinstance(element, DescMessage):
        return message_json(element, pool, depth + 1)
    if isinstance(element, DescEnum):
        return _enum(element)
    return _scalar(element, pool, depth)


def message_json(desc: DescMessage, pool: list[str], depth: int = 0) -> st.SearchStrategy[Any]:
    """A JSON value for ``desc``: usually an object with some of its fields, sometimes anything."""
    wkt = _wkt(desc.type_name, depth)
    if wkt is not None:
        return st.one_of(wkt, any_json)
    if depth > MAX_DEPTH or not desc.fields:
        return st.one_of(st.just({}), any_json)
    fields = []
    for f in desc.fields:
        names = st.sampled_from([f.json_name, f.json_name, f.name])  # camelCase, or the proto name
        fields.append((names, st.deferred(lambda v=f.value: _value(v, pool, depth)), f.value))
    hostile = st.one_of(any_json, huge_strings, st.integers()) if depth == 0 else st.one_of(any_json, st.integers())

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        if draw(st.integers(min_value=0, max_value=19)) == 13:
            return draw(hostile)  # the whole message has the wrong type
        chosen = draw(st.lists(st.sampled_from(range(len(fields))), max_size=min(len(fields), 6), unique=True))
        obj: dict[str, Any] = {}
        for index in chosen:
            names, strategy, _ = fields[index]
            name = draw(names)
            wrong_type = draw(st.integers(min_value=0, max_value=9)) == 7
            obj[name] = draw(any_json) if wrong_type else draw(strategy)
        if draw(st.booleans()) and draw(st.booleans()):
            obj[draw(st.text(min_size=1, max_size=10))] = draw(any_json)  # an unknown field
        return obj

    return build()


def deep_nesting(kind: str, depth: int) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


raw_bodies = st.one_of(
    st.binary(max_size=200),  # arbitrary bytes, mostly invalid UTF-8
    st.sampled_from([b"", b"{", b"}", b"[]", b"null", b"0", b'"x"', b"\xff\xfe{}", b'{"a": "\xff"}',
                     b'{"a": "\\ud800"}', b'{"a": 1,}', b"{'a': 1}", b'{"a": NaN}', b"\x00{}", b"{}\x00",
                     b'{"a":1}{"b":2}', b'{"sessionId": "1", "sessionId": "2"}']),
    st.sampled_from([("array", 50), ("array", 5000), ("object", 200), ("object", 100_000)]).map(
        lambda spec: deep_nesting(*spec)),
)
