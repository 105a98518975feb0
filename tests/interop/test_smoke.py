"""The server starts, answers health checks and accepts the admin PAT through the official SDK."""

from __future__ import annotations

import httpx
from zitadel_client.models import OrganizationServiceListOrganizationsRequest

from ..conftest import ServerProcess


def test_health_and_readiness(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok"}


def test_admin_pat_lists_the_default_organization(sdk) -> None:  # type: ignore[no-untyped-def]
    response = sdk.organizations.list_organizations(OrganizationServiceListOrganizationsRequest())
    assert [org.name for org in response.result] == ["Tessera"]
    assert response.result[0].primary_domain == "tessera.localhost"
