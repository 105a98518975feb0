"""Small helpers shared by the interop tests: unique names, error inspection, common set-up."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from zitadel_client.exceptions import ApiError
from zitadel_client.models import (
    OrganizationServiceAddOrganizationRequest,
    OrganizationServiceListOrganizationsRequest,
    OrganizationServiceSearchQuery,
    UserServiceAddHumanUserRequest,
    UserServiceAddPersonalAccessTokenRequest,
    UserServiceCreateUserRequest,
    UserServiceMachine,
    UserServiceOrganization,
    UserServicePassword,
    UserServiceSetHumanEmail,
    UserServiceSetHumanProfile,
)

from tessera.gen.zitadel.message_pb import ErrorDetail

STRONG_PASSWORD = "Sup3r-Secret-pw"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class WireError:
    """An error as the SDK saw it: HTTP status, Connect code, message and the ErrorDetail's ID."""

    status: int
    code: str
    message: str
    error_id: str
    detail_message: str


def connect_error_of(status: int, body: Any) -> WireError:
    """Parse and check a Connect error body: one zitadel.v1.ErrorDetail whose ID ends the message."""
    assert isinstance(body, dict), body
    details = body.get("details") or []
    assert len(details) == 1, body
    assert details[0]["type"] == "zitadel.v1.ErrorDetail", body
    raw = details[0]["value"]
    detail = ErrorDetail.from_binary(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    assert body["message"] == f"{detail.message} ({detail.id})", body
    return WireError(status, body["code"], body["message"], detail.id, detail.message)


def sdk_error(call: Callable[[], Any]) -> WireError:
    """Run an SDK call that must fail and return its parsed error."""
    with pytest.raises(ApiError) as info:
        call()
    assert info.value.response_headers.get("content-type", "").startswith("application/json")
    return connect_error_of(info.value.code, info.value.response_body)


def default_org_id(sdk: Any) -> str:
    response = sdk.organizations.list_organizations(OrganizationServiceListOrganizationsRequest(
        queries=[OrganizationServiceSearchQuery(default_query={})]))
    assert len(response.result) == 1
    return str(response.result[0].id)


def new_org(sdk: Any, name: str | None = None) -> str:
    response = sdk.organizations.add_organization(OrganizationServiceAddOrganizationRequest(name=name or unique("org")))
    return str(response.organization_id)


def add_human(sdk: Any, *, org_id: str | None = None, username: str | None = None, given: str = "Ada",
              family: str = "Lovelace", email: str | None = None, password: str | None = STRONG_PASSWORD) -> str:
    username = username or unique("human")
    response = sdk.users.add_human_user(UserServiceAddHumanUserRequest(
        username=username,
        organization=UserServiceOrganization(org_id=org_id) if org_id else None,
        profile=UserServiceSetHumanProfile(given_name=given, family_name=family),
        email=UserServiceSetHumanEmail(email=email or f"{username}@example.com", is_verified=True),
        password=UserServicePassword(password=password, change_required=False) if password else None,
    ))
    return str(response.user_id)


def add_machine(sdk: Any, *, org_id: str, username: str | None = None, name: str = "Robot") -> str:
    response = sdk.users.create_user(UserServiceCreateUserRequest(
        organization_id=org_id, username=username or unique("machine"),
        machine=UserServiceMachine(name=name, description="test service account")))
    return str(response.id)


def add_pat(sdk: Any, user_id: str) -> tuple[str, str]:
    """A new PAT for ``user_id``: (token_id, token)."""
    response = sdk.users.add_personal_access_token(UserServiceAddPersonalAccessTokenRequest(user_id=user_id))
    return str(response.token_id), str(response.token)
