"""Helpers for the Session Service tests: raw Connect calls, error parsing, database access, principals."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from ..conftest import ServerProcess
from ..helpers import PASSWORD, add_human, connect, sign_in

__all__ = ["PASSWORD", "add_human", "b64", "call", "sign_in"]


# One pooled client: a new httpx client per call costs far more than the call itself.
_client = httpx.Client(timeout=30)


def call(server: ServerProcess, method: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    """A SessionService Connect call, as the official SDKs make it; the admin PAT unless ``token`` is given."""
    headers = {"content-type": "application/json", "authorization": f"Bearer {token or server.admin_pat}"}
    return _client.post(f"{server.url}/zitadel.session.v2.SessionService/{method}", json=body, headers=headers)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def failure(response: httpx.Response) -> tuple[int, str, str]:
    """(HTTP status, Connect code, error ID) of a failed Connect call; the message must end in the ID."""
    body = response.json()
    details = body.get("details") or []
    assert len(details) == 1, body
    detail = details[0]["debug"]
    error_id = str(detail.get("id", ""))
    if error_id:
        assert body["message"].endswith(f"({error_id})"), body
    return response.status_code, str(body["code"]), error_id


def failed_attempts(response: httpx.Response) -> int:
    """The failed-attempt counter of a CredentialsCheckError detail."""
    detail = response.json()["details"][0]
    assert detail["type"] == "zitadel.v1.CredentialsCheckError", detail
    return int(detail["debug"]["failedAttempts"])


def b64(value: bytes | str) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def user_check(user_id: str, password: str | None = None) -> dict[str, Any]:
    checks: dict[str, Any] = {"user": {"userId": user_id}}
    if password is not None:
        checks["password"] = {"password": password}
    return {"checks": checks}


def create(server: ServerProcess, body: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
    return ok(call(server, "CreateSession", body or {}, token))


def get(server: ServerProcess, session_id: str, token: str | None = None, *,
        session_token: str | None = None) -> httpx.Response:
    body = {"sessionId": session_id}
    if session_token is not None:
        body["sessionToken"] = session_token
    return call(server, "GetSession", body, token)


def get_ok(server: ServerProcess, session_id: str, **kwargs: Any) -> dict[str, Any]:
    return dict(ok(get(server, session_id, **kwargs))["session"])


def list_ids(server: ServerProcess, body: dict[str, Any], token: str | None = None) -> list[str]:
    return [s["id"] for s in ok(call(server, "ListSessions", body, token)).get("sessions", [])]


# ---- database access -----------------------------------------------------------------------------------


def db_url(server: ServerProcess) -> str:
    return server.database_url or f"sqlite:///{server.data_dir / 'tessera.db'}"


def query(server: ServerProcess, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(db_url(server))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


def execute(server: ServerProcess, sql: str, **params: Any) -> None:
    engine = create_engine(db_url(server))
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def write_counts(server: ServerProcess) -> tuple[int, int]:
    """(session rows, session events): both unchanged after a request that must write nothing."""
    sessions = query(server, "SELECT count(*) FROM sessions")[0][0]
    events = query(server, "SELECT count(*) FROM events WHERE aggregate_type = 'session'")[0][0]
    return int(sessions), int(events)


# ---- principals ----------------------------------------------------------------------------------------


def machine_with_pat(server: ServerProcess, *, role: str | None = None, scope: str = "",
                     org_id: str | None = None) -> tuple[str, str]:
    """A machine user with a PAT and optionally one membership: (user_id, pat)."""
    org = org_id or default_org(server)
    created = connect(server, "UserService", "CreateUser",
                      {"organizationId": org, "username": f"m{uuid.uuid4().hex[:10]}",
                       "machine": {"name": "Robot"}}, server.admin_pat)
    user_id = str(ok(created)["id"])
    pat = ok(connect(server, "UserService", "AddPersonalAccessToken", {"userId": user_id}, server.admin_pat))
    if role is not None:
        execute(server, "INSERT INTO memberships (user_id, scope, role) VALUES (:u, :s, :r)",
                u=user_id, s=scope, r=role)
    return user_id, str(pat["token"])


def default_org(server: ServerProcess) -> str:
    listed = ok(connect(server, "OrganizationService", "ListOrganizations",
                        {"queries": [{"defaultQuery": {}}]}, server.admin_pat))
    return str(listed["result"][0]["id"])


def new_org(server: ServerProcess) -> str:
    added = connect(server, "OrganizationService", "AddOrganization", {"name": f"org-{uuid.uuid4().hex[:10]}"},
                    server.admin_pat)
    return str(ok(added)["organizationId"])


def instance_id(server: ServerProcess) -> str:
    return str(query(server, "SELECT id FROM instances")[0][0])
