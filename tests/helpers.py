"""Small helpers shared by tests: raw Connect calls, users with passwords, CLI runs."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import httpx

from .conftest import ServerProcess

PASSWORD = "Test-Passw0rd!"


def connect(server: ServerProcess, service: str, method: str, body: dict[str, Any],
            token: str | None) -> httpx.Response:
    """POST a Connect unary JSON call, as the official SDKs do."""
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    package = {"SessionService": "session", "UserService": "user", "OrganizationService": "org"}[service]
    return httpx.post(f"{server.url}/zitadel.{package}.v2.{service}/{method}", json=body, headers=headers, timeout=30)


def session_call(server: ServerProcess, method: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    return connect(server, "SessionService", method, body, server.admin_pat if token is None else token)


def add_human(server: ServerProcess, *, password: str = PASSWORD, org_id: str | None = None) -> dict[str, str]:
    """A new human user with a password; returns its id and username."""
    name = f"u{uuid.uuid4().hex[:10]}"
    body: dict[str, Any] = {
        "username": name, "profile": {"givenName": "Test", "familyName": "User"},
        "email": {"email": f"{name}@example.com", "isVerified": True},
        "password": {"password": password, "changeRequired": False},
    }
    if org_id:
        body["organization"] = {"orgId": org_id}
    response = connect(server, "UserService", "AddHumanUser", body, server.admin_pat)
    assert response.status_code == 200, response.text
    return {"id": response.json()["userId"], "name": name}


def sign_in(server: ServerProcess, username: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    """CreateSession with user and password checks; returns the response JSON."""
    checks = {"user": {"loginName": username}, "password": {"password": password}}
    response = session_call(server, "CreateSession", {"checks": checks, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())


def error_id(response: httpx.Response) -> str:
    details = response.json().get("details") or [{}]
    return str(details[0].get("debug", details[0]).get("id", ""))


def tessera_cli(server: ServerProcess, *args: str) -> str:
    """Run ``python -m tessera …`` against the server's database."""
    target = ["--data-dir", str(server.data_dir)]
    if server.database_url:
        target += ["--database", server.database_url]
    done = subprocess.run([sys.executable, "-m", "tessera", *args, *target], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
