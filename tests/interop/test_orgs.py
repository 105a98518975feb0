"""Organization Service v2 (AddOrganization, ListOrganizations) through the official Python SDK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from zitadel_client.models import (
    OrganizationServiceAddHumanUserRequest,
    OrganizationServiceAddOrganizationRequest,
    OrganizationServiceAdmin,
    OrganizationServiceListOrganizationsRequest,
    OrganizationServiceListQuery,
    OrganizationServiceOrganizationDomainQuery,
    OrganizationServiceOrganizationFieldName,
    OrganizationServiceOrganizationIDQuery,
    OrganizationServiceOrganizationNameQuery,
    OrganizationServiceOrganizationState,
    OrganizationServicePassword,
    OrganizationServiceSearchQuery,
    OrganizationServiceSetHumanEmail,
    OrganizationServiceSetHumanProfile,
    OrganizationServiceTextQueryMethod,
    UserServiceGetUserByIDRequest,
    UserServiceListUsersRequest,
    UserServiceOrganizationIdQuery,
    UserServiceSearchQuery,
)

from .helpers import STRONG_PASSWORD, add_human, default_org_id, sdk_error, unique


def list_orgs(sdk, *queries: OrganizationServiceSearchQuery, **kwargs):  # type: ignore[no-untyped-def]
    return sdk.organizations.list_organizations(OrganizationServiceListOrganizationsRequest(
        queries=list(queries), **kwargs))


def by_name(name: str, method: str = "TEXT_QUERY_METHOD_EQUALS") -> OrganizationServiceSearchQuery:
    return OrganizationServiceSearchQuery(name_query=OrganizationServiceOrganizationNameQuery(
        name=name, method=OrganizationServiceTextQueryMethod(method)))


def by_id(org_id: str) -> OrganizationServiceSearchQuery:
    return OrganizationServiceSearchQuery(id_query=OrganizationServiceOrganizationIDQuery(id=org_id))


def test_add_organization_without_admins(sdk) -> None:  # type: ignore[no-untyped-def]
    name = f"Acme {unique('Corp')}"
    before = datetime.now(UTC) - timedelta(seconds=5)
    response = sdk.organizations.add_organization(OrganizationServiceAddOrganizationRequest(name=name))
    assert response.organization_id and response.organization_id.isdigit()
    assert int(response.details.sequence) == 1
    assert response.details.resource_owner == response.organization_id
    assert response.details.change_date >= before
    assert response.created_admins in (None, [])

    found = list_orgs(sdk, by_id(response.organization_id))
    assert int(found.details.total_result) == 1
    org = found.result[0]
    assert org.name == name
    assert org.state == OrganizationServiceOrganizationState.ORGANIZATION_STATE_ACTIVE
    assert org.primary_domain == f"{name.lower().replace(' ', '-')}.tessera.localhost"
    assert int(org.details.sequence) == 1
    assert org.details.creation_date >= before


def test_add_organization_with_own_id(sdk) -> None:  # type: ignore[no-untyped-def]
    org_id = unique("my-org-id")
    response = sdk.organizations.add_organization(OrganizationServiceAddOrganizationRequest(
        name=unique("Own ID"), organization_id=org_id))
    assert response.organization_id == org_id
    assert list_orgs(sdk, by_id(org_id)).result[0].id == org_id


def test_add_organization_with_a_new_human_and_an_existing_user_as_admins(sdk) -> None:  # type: ignore[no-untyped-def]
    existing = add_human(sdk)
    username = unique("boss")
    response = sdk.organizations.add_organization(OrganizationServiceAddOrganizationRequest(
        name=unique("Admins Inc"),
        admins=[
            OrganizationServiceAdmin(human=OrganizationServiceAddHumanUserRequest(
                username=username,
                profile=OrganizationServiceSetHumanProfile(given_name="Bo", family_name="Ss"),
                email=OrganizationServiceSetHumanEmail(email="boss@example.com", is_verified=True),
                password=OrganizationServicePassword(password=STRONG_PASSWORD))),
            OrganizationServiceAdmin(user_id=existing, roles=["ORG_USER_MANAGER"]),
        ]))
    org_id = response.organization_id
    created = [a.user_id for a in response.created_admins]
    assert len(created) == 2 and created[1] == existing

    domain = list_orgs(sdk, by_id(org_id)).result[0].primary_domain
    boss = sdk.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=created[0])).user
    assert boss.username == username
    assert boss.details.resource_owner == org_id
    assert boss.preferred_login_name == f"{username}@{domain}"
    assert boss.human.email.is_verified is True
    members = sdk.users.list_users(UserServiceListUsersRequest(queries=[UserServiceSearchQuery(
        organization_id_query=UserServiceOrganizationIdQuery(organization_id=org_id))]))
    assert [u.user_id for u in members.result] == [created[0]]  # the existing admin stays in its own org


def test_add_organization_with_unknown_admin_creates_nothing(sdk) -> None:  # type: ignore[no-untyped-def]
    name = unique("Ghost Admin")
    error = sdk_error(lambda: sdk.organizations.add_organization(OrganizationServiceAddOrganizationRequest(
        name=name, admins=[OrganizationServiceAdmin(user_id="no-such-user")])))
    assert (error.status, error.code) == (404, "not_found")
    assert list_orgs(sdk, by_name(name)).result in (None, [])


def test_add_organization_with_duplicate_admin_username_creates_nothing(sdk) -> None:  # type: ignore[no-untyped-def]
    taken = unique("taken")
    add_human(sdk, username=taken)
    name = unique("Dup Admin")
    error = sdk_error(lambda: sdk.organizations.add_organization(OrganizationServiceAddOrganizationRequest(
        name=name, admins=[OrganizationServiceAdmin(human=OrganizationServiceAddHumanUserRequest(
            username=taken, profile=OrganizationServiceSetHumanProfile(given_name="A", family_name="B"),
            email=OrganizationServiceSetHumanEmail(email="dup@example.com")))])))
    assert (error.status, error.code) == (409, "already_exists")
    assert list_orgs(sdk, by_name(name)).result in (None, [])


def test_duplicate_organization_name_is_already_exists(sdk) -> None:  # type: ignore[no-untyped-def]
    name = unique("Twice")
    sdk.organizations.add_organization(OrganizationServiceAddOrganizationRequest(name=name))
    error = sdk_error(lambda: sdk.organizations.add_organization(
        OrganizationServiceAddOrganizationRequest(name=name.upper())))
    assert (error.status, error.code) == (409, "already_exists")


def test_empty_organization_name_is_invalid(sdk) -> None:  # type: ignore[no-untyped-def]
    error = sdk_error(lambda: sdk.organizations.add_organization(OrganizationServiceAddOrganizationRequest(name=" ")))
    assert (error.status, error.code, error.error_id) == (400, "invalid_argument", "ORG-mruNY")


def test_list_organizations_queries_paging_and_sorting(sdk) -> None:  # type: ignore[no-untyped-def]
    tag = unique("listing")
    ids = {}
    for letter in ("c", "a", "b"):
        ids[letter] = sdk.organizations.add_organization(
            OrganizationServiceAddOrganizationRequest(name=f"{tag} {letter}")).organization_id
    sort_name = OrganizationServiceOrganizationFieldName.ORGANIZATION_FIELD_NAME_NAME
    prefix = by_name(tag, "TEXT_QUERY_METHOD_STARTS_WITH")

    ascending = list_orgs(sdk, prefix, sorting_column=sort_name, query=OrganizationServiceListQuery(asc=True))
    assert [o.name[-1] for o in ascending.result] == ["a", "b", "c"]
    assert int(ascending.details.total_result) == 3
    assert ascending.sorting_column == sort_name
    descending = list_orgs(sdk, prefix, sorting_column=sort_name, query=OrganizationServiceListQuery(asc=False))
    assert [o.name[-1] for o in descending.result] == ["c", "b", "a"]
    by_creation = list_orgs(sdk, prefix, sorting_column=OrganizationServiceOrganizationFieldName(
        "ORGANIZATION_FIELD_NAME_CREATION_DATE"), query=OrganizationServiceListQuery(asc=True))
    assert [o.name[-1] for o in by_creation.result] == ["c", "a", "b"]
    page = list_orgs(sdk, prefix, sorting_column=sort_name,
                     query=OrganizationServiceListQuery(offset="1", limit=1, asc=True))
    assert [o.name[-1] for o in page.result] == ["b"]
    assert int(page.details.total_result) == 3

    ignore_case = list_orgs(sdk, by_name(f"{tag} B".upper(), "TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE"))
    assert [o.id for o in ignore_case.result] == [ids["b"]]
    domain = list_orgs(sdk, OrganizationServiceSearchQuery(domain_query=OrganizationServiceOrganizationDomainQuery(
        domain=f"{tag}-a.tessera.localhost", method=OrganizationServiceTextQueryMethod.TEXT_QUERY_METHOD_EQUALS)))
    assert [o.id for o in domain.result] == [ids["a"]]


def test_default_query_finds_the_default_organization(sdk) -> None:  # type: ignore[no-untyped-def]
    response = list_orgs(sdk, OrganizationServiceSearchQuery(default_query={}))
    assert [o.name for o in response.result] == ["Tessera"]
    assert response.result[0].id == default_org_id(sdk)
    assert response.result[0].primary_domain == "tessera.localhost"
