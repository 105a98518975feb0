"""Settings Service v2 (GetGeneralSettings) through the official Python SDK and over REST."""

from __future__ import annotations

import httpx
from zitadel_client import Zitadel

from ..conftest import ServerProcess
from .helpers import add_machine, add_pat, default_org_id, new_org, sdk_error


def test_general_settings_name_the_default_organization_and_english(sdk) -> None:  # type: ignore[no-untyped-def]
    general = sdk.settings.get_general_settings({})
    assert general.default_org_id == default_org_id(sdk)
    assert general.default_language == "en"
    assert general.supported_languages == ["en"]


def test_general_settings_stay_on_the_default_organization_when_others_exist(sdk) -> None:  # type: ignore[no-untyped-def]
    before = sdk.settings.get_general_settings({}).default_org_id
    new_org(sdk)
    assert sdk.settings.get_general_settings({}).default_org_id == before == default_org_id(sdk)


def test_general_settings_over_rest(server: ServerProcess, sdk) -> None:  # type: ignore[no-untyped-def]
    answer = httpx.get(f"{server.url}/v2/settings", headers={"Authorization": f"Bearer {server.admin_pat}"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"defaultOrgId": default_org_id(sdk), "defaultLanguage": "en",
                             "supportedLanguages": ["en"]}


def test_general_settings_need_a_caller_allowed_to_read_policies(server: ServerProcess, sdk) -> None:  # type: ignore[no-untyped-def]
    machine_id = add_machine(sdk, org_id=default_org_id(sdk), name="No roles")
    _, token = add_pat(sdk, machine_id)
    stranger = Zitadel.with_access_token(server.url, token)
    denied = sdk_error(lambda: stranger.settings.get_general_settings({}))
    assert (denied.status, denied.code, denied.error_id) == (403, "permission_denied", "AUTH-AWfge")


def test_general_settings_need_a_token(server: ServerProcess) -> None:
    url = f"{server.url}/zitadel.settings.v2.SettingsService/GetGeneralSettings"
    missing = httpx.post(url, json={})
    assert (missing.status_code, missing.json()["code"]) == (401, "unauthenticated")
    wrong = httpx.post(url, json={}, headers={"Authorization": "Bearer tpat_wrong"})
    assert (wrong.status_code, wrong.json()["code"]) == (401, "unauthenticated")
