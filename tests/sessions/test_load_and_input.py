"""Concurrent SetSession on one session, secrets stored only as hashes, and bad input of every kind."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from ..conftest import ServerProcess
from .support import (
    PASSWORD,
    add_human,
    b64,
    call,
    create,
    failure,
    get,
    get_ok,
    ok,
    parse_ts,
    query,
    sign_in,
    user_check,
    write_counts,
)

CONCURRENT = 50


def test_concurrent_set_session_loses_nothing(server: ServerProcess) -> None:
    user = add_human(server)
    created = sign_in(server, user["name"])
    sid = created["sessionId"]

    def add_key(i: int) -> httpx.Response:
        with httpx.Client(timeout=60) as client:
            return client.post(f"{server.url}/zitadel.session.v2.SessionService/SetSession",
                               json={"sessionId": sid, "metadata": {f"key-{i:02d}": b64(f"value-{i}")}},
                               headers={"authorization": f"Bearer {server.admin_pat}"})

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        answers = list(pool.map(add_key, range(CONCURRENT)))
    succeeded = [a.json() for a in answers if a.status_code == 200]
    for failed in (a for a in answers if a.status_code != 200):
        assert failed.status_code < 500 or failed.status_code == 503, failed.text
        assert failed.json()["code"] in ("aborted", "unavailable", "resource_exhausted"), failed.text
    assert len(succeeded) == CONCURRENT, [a.text for a in answers if a.status_code != 200]

    sequences = [int(s["details"]["sequence"]) for s in succeeded]
    assert sorted(sequences) == list(range(2, CONCURRENT + 2))  # unique, no gaps: one event per write
    session = get_ok(server, sid)
    assert session["sequence"] == str(CONCURRENT + 1)
    assert session["metadata"] == {f"key-{i:02d}": b64(f"value-{i}") for i in range(CONCURRENT)}
    events = query(server, "SELECT sequence FROM events WHERE aggregate_type = 'session' AND aggregate_id = :id "
                           "ORDER BY sequence", id=sid)
    assert [e[0] for e in events] == list(range(1, CONCURRENT + 2))

    last = max(succeeded, key=lambda s: int(s["details"]["sequence"]))
    assert get(server, sid, session_token=last["sessionToken"]).status_code == 200
    for stale in [created["sessionToken"]] + [s["sessionToken"] for s in succeeded if s is not last]:
        assert failure(get(server, sid, session_token=stale)) == (403, "permission_denied", "QUERY-dsfr3")


def _dump(server: ServerProcess, table: str) -> str:
    rows = query(server, f"SELECT * FROM {table}")
    return "\n".join(repr(tuple(row)) for row in rows)


def test_tokens_and_passwords_are_stored_only_as_hashes(server: ServerProcess) -> None:
    secret_password = "Unique-Secret-Pw-4711"
    user = add_human(server, password=secret_password)
    created = sign_in(server, user["name"], password=secret_password, metadata={"m": b64("x")})
    rotated = ok(call(server, "SetSession", {"sessionId": created["sessionId"], "metadata": {"m": b64("y")}}))
    failed = call(server, "CreateSession", user_check(user["id"], "Wrong-Secret-Pw-0815"))
    assert failed.status_code == 400
    tokens = [created["sessionToken"], rotated["sessionToken"]]
    secrets = [*tokens, *(t.split(".", 1)[1] for t in tokens), secret_password, "Wrong-Secret-Pw-0815",
               server.admin_pat]
    stored = "\n".join(_dump(server, table) for table in ("sessions", "events", "users", "personal_access_tokens"))
    log = server.log()
    for secret in secrets:
        assert secret not in stored
        assert secret not in log
        assert secret not in failed.text
    row = query(server, "SELECT token_hash FROM sessions WHERE id = :id", id=created["sessionId"])[0]
    import hashlib

    assert bytes(row[0]) == hashlib.sha256(rotated["sessionToken"].encode()).digest()


def _invalid(server: ServerProcess, method: str, body: Any) -> tuple[int, str, str]:
    """Send ``body`` (a dict, or raw text); it must be invalid_argument and write nothing."""
    before = write_counts(server)
    headers = {"content-type": "application/json", "authorization": f"Bearer {server.admin_pat}"}
    content = body if isinstance(body, str) else json.dumps(body)
    answer = httpx.post(f"{server.url}/zitadel.session.v2.SessionService/{method}", content=content,
                        headers=headers, timeout=30)
    assert answer.status_code == 400, (body if isinstance(body, str) else str(body)[:300], answer.text)
    result = failure(answer)
    assert result[1] == "invalid_argument", answer.text
    assert write_counts(server) == before
    return result


@pytest.fixture(scope="module")
def victim(server: ServerProcess) -> dict[str, Any]:
    """A session that bad requests try to modify."""
    user = add_human(server)
    return {**create(server, {**user_check(user["id"]), "metadata": {"keep": b64("me")}}), "user": user}


def test_oversized_metadata(server: ServerProcess, victim: dict[str, Any]) -> None:
    too_many = {f"k{i}": b64("v") for i in range(51)}
    long_key = {"k" * 201: b64("v")}
    big_value = {"k": b64(b"x" * 4097)}
    for metadata in (too_many, long_key, big_value, {"": b64("v")}):
        _invalid(server, "CreateSession", {"metadata": metadata})
        _invalid(server, "SetSession", {"sessionId": victim["sessionId"], "metadata": metadata})
    # the limits are inclusive
    create(server, {"metadata": {f"k{i}": b64("v") for i in range(50)}})
    create(server, {"metadata": {"k" * 200: b64(b"x" * 4096)}})


def test_metadata_limit_applies_to_the_whole_session(server: ServerProcess) -> None:
    created = create(server, {"metadata": {f"a{i}": b64("v") for i in range(30)}})
    more = {f"b{i}": b64("v") for i in range(21)}
    _invalid(server, "SetSession", {"sessionId": created["sessionId"], "metadata": more})
    # replacing and deleting keys within the limit is fine
    ok(call(server, "SetSession", {"sessionId": created["sessionId"],
                                   "metadata": {**{f"a{i}": "" for i in range(21)}, **more}}))
    assert len(get_ok(server, created["sessionId"])["metadata"]) == 30


def test_invalid_base64_and_wrong_types(server: ServerProcess, victim: dict[str, Any]) -> None:
    for metadata in ({"k": "!!!not base64!!!"}, {"k": 5}, ["k"], "k"):
        _invalid(server, "CreateSession", {"metadata": metadata})
        _invalid(server, "SetSession", {"sessionId": victim["sessionId"], "metadata": metadata})
    for raw in ("{", "[]", '{"checks": 5}', '{"checks": {"user": {"userId": 5}}}', "null", '{"lifetime": 5}',
                '{"userAgent": {"header": {"a": "b"}}}', "[" * 10000 + "]" * 10000):
        _invalid(server, "CreateSession", raw)


def test_negative_and_malformed_durations(server: ServerProcess, victim: dict[str, Any]) -> None:
    for lifetime in ("-5s", "abc", "5", "5m", "1e9999s", "-0.5s", "99999999999999s"):
        _invalid(server, "CreateSession", {"lifetime": lifetime})
        _invalid(server, "SetSession", {"sessionId": victim["sessionId"], "lifetime": lifetime})
    assert get_ok(server, victim["sessionId"], session_token=victim["sessionToken"])["sequence"] == "1"


def test_extreme_lifetimes(server: ServerProcess) -> None:
    huge = create(server, {"lifetime": "315576000000s"})  # the largest Duration: saturates at ~292 years
    session = get_ok(server, huge["sessionId"])
    assert 2300 < parse_ts(session["expirationDate"]).year < 2400
    extended = ok(call(server, "SetSession", {"sessionId": huge["sessionId"], "lifetime": "315576000000s"}))
    assert extended["details"]["sequence"] == "2"
    assert ok(call(server, "ListSessions", {}))["details"]["totalResult"]
    # A positive lifetime below a microsecond still expires; it does not mean "never".
    tiny = create(server, {"lifetime": "0.000000001s"})
    session = get_ok(server, tiny["sessionId"])
    assert parse_ts(session["expirationDate"]) == parse_ts(session["creationDate"]) + timedelta(microseconds=1)
    answer = call(server, "SetSession", {"sessionId": tiny["sessionId"], "metadata": {"k": b64("v")}})
    assert failure(answer) == (400, "failed_precondition", "COMMAND-Hkl3d")


def test_ids_over_200_characters(server: ServerProcess, victim: dict[str, Any]) -> None:
    long_id = "1" * 201
    sid, token = victim["sessionId"], victim["sessionToken"]
    _invalid(server, "GetSession", {"sessionId": long_id})
    _invalid(server, "GetSession", {"sessionId": sid, "sessionToken": "t" * 201})
    _invalid(server, "GetSession", {"sessionId": ""})
    _invalid(server, "SetSession", {"sessionId": long_id, "metadata": {"k": b64("v")}})
    _invalid(server, "DeleteSession", {"sessionId": long_id})
    _invalid(server, "DeleteSession", {"sessionId": sid, "sessionToken": "t" * 201})
    _invalid(server, "CreateSession", user_check("1" * 201))
    _invalid(server, "CreateSession", {"checks": {"user": {"loginName": "a" * 201}}})
    _invalid(server, "CreateSession", {"checks": {"user": {}}})
    _invalid(server, "SetSession", {"sessionId": sid, "checks": {"password": {"password": "p" * 201}}})
    _invalid(server, "SetSession", {"sessionId": sid, "checks": {"user": {"userId": ""}}})
    _invalid(server, "ListSessions", {"queries": [{"idsQuery": {"ids": [long_id]}}]})
    _invalid(server, "ListSessions", {"queries": [{"userIdQuery": {"id": long_id}}]})
    _invalid(server, "ListSessions", {"queries": [{"creatorQuery": {"id": long_id}}]})
    _invalid(server, "ListSessions", {"queries": [{"userAgentQuery": {"fingerprintId": long_id}}]})
    _invalid(server, "CreateSession", {"userAgent": {"fingerprintId": "f" * 201}})
    assert get(server, sid, session_token=token).status_code == 200


def test_list_limits_and_bad_queries(server: ServerProcess) -> None:
    assert _invalid(server, "ListSessions", {"query": {"limit": 1001}})[2] == "QUERY-4M0fs"
    assert _invalid(server, "ListSessions", {"query": {"limit": 4294967295}})[2] == "QUERY-4M0fs"
    _invalid(server, "ListSessions", {"query": {"limit": -1}})
    _invalid(server, "ListSessions", {"query": {"offset": "-1"}})
    _invalid(server, "ListSessions", {"queries": [{}]})
    _invalid(server, "ListSessions", {"queries": [{"creationDateQuery": {"creationDate": "yesterday"}}]})
    _invalid(server, "ListSessions", {"queries": [{"creationDateQuery": {"creationDate": "10000-01-01T00:00:00Z"}}]})


def test_undefined_enum_numbers_in_binary_requests(server: ServerProcess) -> None:
    from protobuf import Oneof

    from tessera.gen.zitadel import object_pb
    from tessera.gen.zitadel.session.v2 import session_pb
    from tessera.gen.zitadel.session.v2 import session_service_pb as pb

    def send(request: pb.ListSessionsRequest) -> httpx.Response:
        return httpx.post(f"{server.url}/zitadel.session.v2.SessionService/ListSessions", content=request.to_binary(),
                          headers={"content-type": "application/proto", "authorization": f"Bearer {server.admin_pat}"})

    method = object_pb.TimestampQueryMethod(9)
    for search in (Oneof("creation_date_query", session_pb.CreationDateQuery(method=method)),
                   Oneof("expiration_date_query", session_pb.ExpirationDateQuery(method=method))):
        request = pb.ListSessionsRequest(queries=[session_pb.SearchQuery(query=search)])
        assert failure(send(request))[:2] == (400, "invalid_argument")
    assert failure(send(pb.ListSessionsRequest(sorting_column=session_pb.SessionFieldName(7))))[:2] == (
        400, "invalid_argument")
    listed = send(pb.ListSessionsRequest(sorting_column=session_pb.SessionFieldName.CREATION_DATE))
    assert listed.status_code == 200
    assert pb.ListSessionsResponse.from_binary(listed.content).details.total_result > 0


def test_password_check_errors_do_not_echo_the_password(server: ServerProcess) -> None:
    user = add_human(server)
    answer = call(server, "CreateSession", user_check(user["id"], "Echo-Me-Not-123"))
    assert "Echo-Me-Not-123" not in answer.text
    assert PASSWORD not in answer.text
