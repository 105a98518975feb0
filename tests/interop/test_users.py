"""User Service v2 through the official Python SDK (zitadel-client 4.1.9), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import bcrypt
import pyotp
import pytest
import zitadel_client
from zitadel_client.models import (
    OrganizationServiceListOrganizationsRequest,
    OrganizationServiceOrganizationIDQuery,
    OrganizationServiceSearchQuery,
    UserServiceAddHumanUserRequest,
    UserServiceAddPersonalAccessTokenRequest,
    UserServiceAndQuery,
    UserServiceCreateUserRequest,
    UserServiceDeactivateUserRequest,
    UserServiceDeleteUserRequest,
    UserServiceEmailQuery,
    UserServiceGetUserByIDRequest,
    UserServiceHashedPassword,
    UserServiceHuman,
    UserServiceIDFilter,
    UserServiceInUserIDQuery,
    UserServiceListPersonalAccessTokensRequest,
    UserServiceListQuery,
    UserServiceListUsersRequest,
    UserServiceLockUserRequest,
    UserServiceLoginNameQuery,
    UserServiceMachine,
    UserServiceNotQuery,
    UserServiceOrganization,
    UserServiceOrganizationIdQuery,
    UserServiceOrQuery,
    UserServicePaginationRequest,
    UserServicePassword,
    UserServicePersonalAccessTokensSearchFilter,
    UserServiceProfile,
    UserServiceReactivateUserRequest,
    UserServiceRegisterTOTPRequest,
    UserServiceRemovePersonalAccessTokenRequest,
    UserServiceRemoveTOTPRequest,
    UserServiceSearchQuery,
    UserServiceSetHumanEmail,
    UserServiceSetHumanProfile,
    UserServiceSetPassword,
    UserServiceSetPasswordRequest,
    UserServiceStateQuery,
    UserServiceTextQueryMethod,
    UserServiceType,
    UserServiceTypeQuery,
    UserServiceUnlockUserRequest,
    UserServiceUserFieldName,
    UserServiceUserNameQuery,
    UserServiceUserState,
    UserServiceVerifyTOTPRegistrationRequest,
)

from ..conftest import ServerProcess
from .helpers import STRONG_PASSWORD, add_human, add_machine, add_pat, default_org_id, new_org, sdk_error, unique

DOMAIN = "tessera.localhost"
ACTIVE = UserServiceUserState.USER_STATE_ACTIVE


def get_user(sdk, user_id: str):  # type: ignore[no-untyped-def]
    return sdk.users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id)).user


def list_users(sdk, *queries: UserServiceSearchQuery, **kwargs):  # type: ignore[no-untyped-def]
    return sdk.users.list_users(UserServiceListUsersRequest(queries=list(queries), **kwargs))


def org_query(org_id: str) -> UserServiceSearchQuery:
    return UserServiceSearchQuery(organization_id_query=UserServiceOrganizationIdQuery(organization_id=org_id))


def name_query(value: str, method: str = "TEXT_QUERY_METHOD_EQUALS") -> UserServiceSearchQuery:
    return UserServiceSearchQuery(user_name_query=UserServiceUserNameQuery(
        user_name=value, method=UserServiceTextQueryMethod(method)))


# ---- creating and reading users ------------------------------------------------------------------


def test_add_human_user_then_get_it(sdk) -> None:  # type: ignore[no-untyped-def]
    org_id = default_org_id(sdk)
    username = unique("ada")
    before = datetime.now(UTC) - timedelta(seconds=5)
    response = sdk.users.add_human_user(UserServiceAddHumanUserRequest(
        username=username,
        organization=UserServiceOrganization(org_id=org_id),
        profile=UserServiceSetHumanProfile(given_name="Ada", family_name="Lovelace", nick_name="ada",
                                           preferred_language="en"),
        email=UserServiceSetHumanEmail(email="Ada@Example.com", is_verified=True),
        password=UserServicePassword(password=STRONG_PASSWORD, change_required=True),
    ))
    assert response.user_id and response.user_id.isdigit()
    assert int(response.details.sequence) == 1
    assert response.details.resource_owner == org_id
    assert response.details.change_date >= before

    user = get_user(sdk, response.user_id)
    assert user.user_id == response.user_id
    assert user.state == ACTIVE
    assert user.username == username
    assert user.login_names == [f"{username}@{DOMAIN}"]
    assert user.preferred_login_name == f"{username}@{DOMAIN}"
    assert user.details.resource_owner == org_id
    assert int(user.details.sequence) == 1
    assert user.machine is None
    human = user.human
    assert human.profile.given_name == "Ada"
    assert human.profile.family_name == "Lovelace"
    assert human.profile.nick_name == "ada"
    assert human.profile.display_name == "Ada Lovelace"
    assert human.profile.preferred_language == "en"
    assert human.email.email == "Ada@Example.com"
    assert human.email.is_verified is True
    assert human.password_change_required is True
    assert human.password_changed is not None and human.password_changed >= before


def test_add_human_user_by_org_domain_defaults_username_to_email(sdk) -> None:  # type: ignore[no-untyped-def]
    email = f"{unique('grace')}@example.com"
    response = sdk.users.add_human_user(UserServiceAddHumanUserRequest(
        organization=UserServiceOrganization(org_domain=DOMAIN.upper()),
        profile=UserServiceSetHumanProfile(given_name="Grace", family_name="Hopper"),
        email=UserServiceSetHumanEmail(email=email),
    ))
    user = get_user(sdk, response.user_id)
    assert user.username == email
    assert user.preferred_login_name == f"{email}@{DOMAIN}"
    assert user.details.resource_owner == default_org_id(sdk)
    assert user.human.email.is_verified in (None, False)
    assert user.human.password_changed is None  # no password was given


def test_add_human_user_with_own_id_and_bcrypt_hash(sdk) -> None:  # type: ignore[no-untyped-def]
    user_id = unique("imported")
    hashed = bcrypt.hashpw(b"Imported-pw-1", bcrypt.gensalt(rounds=4)).decode()
    response = sdk.users.add_human_user(UserServiceAddHumanUserRequest(
        user_id=user_id, username=unique("imp"),
        profile=UserServiceSetHumanProfile(given_name="Imp", family_name="Orted"),
        email=UserServiceSetHumanEmail(email="imp@example.com"),
        hashed_password=UserServiceHashedPassword(hash=hashed, change_required=False),
    ))
    assert response.user_id == user_id
    assert get_user(sdk, user_id).human.password_changed is not None


def test_create_user_human_with_sdk_password_shape(sdk) -> None:  # type: ignore[no-untyped-def]
    org_id = default_org_id(sdk)
    username = unique("katherine")
    before = datetime.now(UTC) - timedelta(seconds=5)
    response = sdk.users.create_user(UserServiceCreateUserRequest(
        organization_id=org_id, username=username,
        human=UserServiceHuman(
            profile=UserServiceProfile(given_name="Katherine", family_name="Johnson", display_name="KJ"),
            email=UserServiceSetHumanEmail(email="kj@example.com", is_verified=True),
            # the SDK models this with SetPassword: {"password": {"password": {...}}}
            password=UserServiceSetPassword(password=UserServicePassword(password=STRONG_PASSWORD,
                                                                         change_required=False)),
        ),
    ))
    assert response.id and response.creation_date >= before
    user = get_user(sdk, response.id)
    assert user.username == username
    assert user.state == ACTIVE
    assert user.human.profile.display_name == "KJ"
    assert user.human.password_change_required in (None, False)
    assert user.human.password_changed is not None


def test_create_user_human_with_hashed_password_in_sdk_shape(sdk) -> None:  # type: ignore[no-untyped-def]
    hashed = bcrypt.hashpw(b"Imported-pw-2", bcrypt.gensalt(rounds=4)).decode()
    response = sdk.users.create_user(UserServiceCreateUserRequest(
        organization_id=default_org_id(sdk), username=unique("hashed"),
        human=UserServiceHuman(
            profile=UserServiceProfile(given_name="Has", family_name="Hed"),
            email=UserServiceSetHumanEmail(email="hashed@example.com"),
            password=UserServiceSetPassword(hashed_password=UserServiceHashedPassword(hash=hashed)),
        ),
    ))
    assert get_user(sdk, response.id).human.password_changed is not None


def test_create_user_machine(sdk) -> None:  # type: ignore[no-untyped-def]
    org_id = default_org_id(sdk)
    username = unique("robot")
    response = sdk.users.create_user(UserServiceCreateUserRequest(
        organization_id=org_id, username=username,
        machine=UserServiceMachine(name="Build robot", description="CI pipeline")))
    user = get_user(sdk, response.id)
    assert user.username == username
    assert user.state == ACTIVE
    assert user.login_names == [f"{username}@{DOMAIN}"]
    assert user.human is None
    assert user.machine.name == "Build robot"
    assert user.machine.description == "CI pipeline"
    assert user.machine.has_secret in (None, False)


def test_create_machine_without_username_uses_its_id(sdk) -> None:  # type: ignore[no-untyped-def]
    # ZITADEL: "If not specified, Zitadel sets the username ... to the user_id for users of type machine."
    org_id = default_org_id(sdk)
    first = sdk.users.create_user(UserServiceCreateUserRequest(
        organization_id=org_id, machine=UserServiceMachine(name="Same name")))
    second = sdk.users.create_user(UserServiceCreateUserRequest(
        organization_id=org_id, machine=UserServiceMachine(name="Same name")))
    assert get_user(sdk, first.id).username == first.id
    assert get_user(sdk, second.id).username == second.id


# ---- ListUsers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def population(sdk):  # type: ignore[no-untyped-def]
    """A fresh organization holding three humans and one machine, for list queries."""
    org_id = new_org(sdk)
    tag = unique("pop")
    ids = {
        "alice": add_human(sdk, org_id=org_id, username=f"{tag}-alice", given="Alice", family="Zeta",
                           email=f"alice.{tag}@example.com"),
        "bob": add_human(sdk, org_id=org_id, username=f"{tag}-bob", given="Bob", family="Young",
                         email=f"bob.{tag}@example.org"),
        "carol": add_human(sdk, org_id=org_id, username=f"{tag}-carol", given="Carol", family="Xu",
                           email=f"carol.{tag}@example.com"),
        "robot": add_machine(sdk, org_id=org_id, username=f"{tag}-robot"),
    }
    sdk.users.lock_user(UserServiceLockUserRequest(user_id=ids["carol"]))
    return {"org_id": org_id, "tag": tag, "ids": ids}


def names(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [u.username.rsplit("-", 1)[-1] for u in response.result or []]


def test_list_users_by_organization(sdk, population) -> None:  # type: ignore[no-untyped-def]
    response = list_users(sdk, org_query(population["org_id"]),
                          sorting_column=UserServiceUserFieldName.USER_FIELD_NAME_USER_NAME,
                          query=UserServiceListQuery(asc=True))
    assert names(response) == ["alice", "bob", "carol", "robot"]
    assert int(response.details.total_result) == 4
    assert response.details.timestamp is not None
    assert response.sorting_column == UserServiceUserFieldName.USER_FIELD_NAME_USER_NAME
    assert {u.details.resource_owner for u in response.result} == {population["org_id"]}


def test_list_users_by_user_name(sdk, population) -> None:  # type: ignore[no-untyped-def]
    tag = population["tag"]
    assert names(list_users(sdk, name_query(f"{tag}-bob"))) == ["bob"]
    assert names(list_users(sdk, name_query(f"{tag}-BOB"))) == []
    assert names(list_users(sdk, name_query(f"{tag}-BOB", "TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE"))) == ["bob"]
    starts = list_users(sdk, name_query(f"{tag}-", "TEXT_QUERY_METHOD_STARTS_WITH"),
                        sorting_column=UserServiceUserFieldName.USER_FIELD_NAME_USER_NAME,
                        query=UserServiceListQuery(asc=True))
    assert names(starts) == ["alice", "bob", "carol", "robot"]
    assert names(list_users(sdk, name_query("ROL", "TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE"),
                            org_query(population["org_id"]))) == ["carol"]
    assert names(list_users(sdk, name_query("-bob", "TEXT_QUERY_METHOD_ENDS_WITH"),
                            org_query(population["org_id"]))) == ["bob"]


def test_list_users_by_login_name(sdk, population) -> None:  # type: ignore[no-untyped-def]
    org = sdk.organizations.list_organizations(OrganizationServiceListOrganizationsRequest(
        queries=[OrganizationServiceSearchQuery(id_query=OrganizationServiceOrganizationIDQuery(
            id=population["org_id"]))]))
    domain = org.result[0].primary_domain
    login = f"{population['tag']}-alice@{domain}"
    response = list_users(sdk, UserServiceSearchQuery(login_name_query=UserServiceLoginNameQuery(
        login_name=login, method=UserServiceTextQueryMethod.TEXT_QUERY_METHOD_EQUALS)))
    assert names(response) == ["alice"]
    assert response.result[0].preferred_login_name == login
    ignore_case = list_users(sdk, UserServiceSearchQuery(login_name_query=UserServiceLoginNameQuery(
        login_name=login.upper(), method=UserServiceTextQueryMethod.TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE)))
    assert names(ignore_case) == ["alice"]


def test_list_users_by_email(sdk, population) -> None:  # type: ignore[no-untyped-def]
    tag = population["tag"]
    response = list_users(sdk, UserServiceSearchQuery(email_query=UserServiceEmailQuery(
        email_address=f"BOB.{tag}@EXAMPLE.ORG",
        method=UserServiceTextQueryMethod.TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE)))
    assert names(response) == ["bob"]
    dot_com = list_users(sdk, org_query(population["org_id"]), UserServiceSearchQuery(
        email_query=UserServiceEmailQuery(email_address=".com",
                                          method=UserServiceTextQueryMethod.TEXT_QUERY_METHOD_ENDS_WITH)),
        sorting_column=UserServiceUserFieldName.USER_FIELD_NAME_EMAIL, query=UserServiceListQuery(asc=True))
    assert names(dot_com) == ["alice", "carol"]


def test_list_users_by_ids_type_and_state(sdk, population) -> None:  # type: ignore[no-untyped-def]
    ids = population["ids"]
    by_ids = list_users(sdk, UserServiceSearchQuery(in_user_ids_query=UserServiceInUserIDQuery(
        user_ids=[ids["alice"], ids["robot"], "does-not-exist"])),
        sorting_column=UserServiceUserFieldName.USER_FIELD_NAME_USER_NAME, query=UserServiceListQuery(asc=True))
    assert names(by_ids) == ["alice", "robot"]
    machines = list_users(sdk, org_query(population["org_id"]),
                          UserServiceSearchQuery(type_query=UserServiceTypeQuery(type=UserServiceType.TYPE_MACHINE)))
    assert names(machines) == ["robot"]
    assert machines.result[0].machine.name == "Robot"
    humans = list_users(sdk, org_query(population["org_id"]),
                        UserServiceSearchQuery(type_query=UserServiceTypeQuery(type=UserServiceType.TYPE_HUMAN)))
    assert sorted(names(humans)) == ["alice", "bob", "carol"]
    locked = list_users(sdk, org_query(population["org_id"]), UserServiceSearchQuery(
        state_query=UserServiceStateQuery(state=UserServiceUserState.USER_STATE_LOCKED)))
    assert names(locked) == ["carol"]
    assert locked.result[0].state == UserServiceUserState.USER_STATE_LOCKED


def test_list_users_with_and_or_not(sdk, population) -> None:  # type: ignore[no-untyped-def]
    tag = population["tag"]
    either = UserServiceSearchQuery(or_query=UserServiceOrQuery(queries=[
        name_query(f"{tag}-alice"), name_query(f"{tag}-carol")]))
    assert sorted(names(list_users(sdk, either))) == ["alice", "carol"]

    not_locked = UserServiceSearchQuery(not_query=UserServiceNotQuery(query=UserServiceSearchQuery(
        state_query=UserServiceStateQuery(state=UserServiceUserState.USER_STATE_LOCKED))))
    both = UserServiceSearchQuery(and_query=UserServiceAndQuery(queries=[either, not_locked]))
    assert names(list_users(sdk, both)) == ["alice"]

    humans_not_bob = list_users(sdk, org_query(population["org_id"]), UserServiceSearchQuery(
        not_query=UserServiceNotQuery(query=UserServiceSearchQuery(
            or_query=UserServiceOrQuery(queries=[
                name_query(f"{tag}-bob"),
                UserServiceSearchQuery(type_query=UserServiceTypeQuery(type=UserServiceType.TYPE_MACHINE))])))))
    assert sorted(names(humans_not_bob)) == ["alice", "carol"]


def test_list_users_paging_and_sorting(sdk, population) -> None:  # type: ignore[no-untyped-def]
    org = org_query(population["org_id"])
    by_name = UserServiceUserFieldName.USER_FIELD_NAME_USER_NAME
    first = list_users(sdk, org, sorting_column=by_name, query=UserServiceListQuery(offset="0", limit=2, asc=True))
    second = list_users(sdk, org, sorting_column=by_name, query=UserServiceListQuery(offset="2", limit=2, asc=True))
    beyond = list_users(sdk, org, sorting_column=by_name, query=UserServiceListQuery(offset="4", limit=2, asc=True))
    assert names(first) == ["alice", "bob"]
    assert names(second) == ["carol", "robot"]
    assert names(beyond) == []
    assert int(first.details.total_result) == int(beyond.details.total_result) == 4

    descending = list_users(sdk, org, sorting_column=by_name, query=UserServiceListQuery(asc=False))
    assert names(descending) == ["robot", "carol", "bob", "alice"]
    humans = UserServiceSearchQuery(type_query=UserServiceTypeQuery(type=UserServiceType.TYPE_HUMAN))
    by_last_name = list_users(sdk, org, humans, sorting_column=UserServiceUserFieldName.USER_FIELD_NAME_LAST_NAME,
                              query=UserServiceListQuery(asc=True))
    assert names(by_last_name) == ["carol", "bob", "alice"]  # Xu, Young, Zeta
    by_first_name = list_users(sdk, org, humans,
                               sorting_column=UserServiceUserFieldName.USER_FIELD_NAME_FIRST_NAME,
                               query=UserServiceListQuery(asc=False))
    assert names(by_first_name) == ["carol", "bob", "alice"]
    by_creation = list_users(sdk, org, sorting_column=UserServiceUserFieldName.USER_FIELD_NAME_CREATION_DATE,
                             query=UserServiceListQuery(asc=True))
    assert names(by_creation) == ["alice", "bob", "carol", "robot"]


# ---- password and state changes ------------------------------------------------------------------


def test_set_password_bumps_sequence_and_change_time(sdk) -> None:  # type: ignore[no-untyped-def]
    user_id = add_human(sdk)
    before = get_user(sdk, user_id)
    response = sdk.users.set_password(UserServiceSetPasswordRequest(
        user_id=user_id, new_password=UserServicePassword(password="An0ther-Secret", change_required=True)))
    assert int(response.details.sequence) == int(before.details.sequence) + 1
    assert response.details.resource_owner == before.details.resource_owner
    after = get_user(sdk, user_id)
    assert int(after.details.sequence) == int(response.details.sequence)
    assert after.human.password_changed > before.human.password_changed
    assert after.human.password_change_required is True


def test_set_password_with_wrong_current_password_is_rejected(sdk) -> None:  # type: ignore[no-untyped-def]
    user_id = add_human(sdk)
    error = sdk_error(lambda: sdk.users.set_password(UserServiceSetPasswordRequest(
        user_id=user_id, current_password="Wrong-password-1",
        new_password=UserServicePassword(password="An0ther-Secret"))))
    assert (error.status, error.code, error.error_id) == (400, "invalid_argument", "COMMAND-3M0fs")
    ok = sdk.users.set_password(UserServiceSetPasswordRequest(
        user_id=user_id, current_password=STRONG_PASSWORD, new_password=UserServicePassword(password="An0ther-Secret")))
    assert int(ok.details.sequence) == 2


def test_lock_unlock_deactivate_reactivate_delete(sdk) -> None:  # type: ignore[no-untyped-def]
    user_id = add_human(sdk)
    steps = [
        (sdk.users.lock_user, UserServiceLockUserRequest, UserServiceUserState.USER_STATE_LOCKED),
        (sdk.users.unlock_user, UserServiceUnlockUserRequest, ACTIVE),
        (sdk.users.deactivate_user, UserServiceDeactivateUserRequest, UserServiceUserState.USER_STATE_INACTIVE),
        (sdk.users.reactivate_user, UserServiceReactivateUserRequest, ACTIVE),
    ]
    for sequence, (method, request, state) in enumerate(steps, start=2):
        response = method(request(user_id=user_id))
        assert int(response.details.sequence) == sequence
        assert response.details.change_date is not None
        user = get_user(sdk, user_id)
        assert user.state == state
        assert int(user.details.sequence) == sequence

    deleted = sdk.users.delete_user(UserServiceDeleteUserRequest(user_id=user_id))
    assert int(deleted.details.sequence) == 6
    error = sdk_error(lambda: get_user(sdk, user_id))
    assert (error.status, error.code, error.error_id) == (404, "not_found", "QUERY-Dfbg2")
    assert list_users(sdk, UserServiceSearchQuery(
        in_user_ids_query=UserServiceInUserIDQuery(user_ids=[user_id]))).result in (None, [])


def test_state_changes_that_make_no_sense_fail_precondition(sdk) -> None:  # type: ignore[no-untyped-def]
    user_id = add_human(sdk)
    unlock = sdk_error(lambda: sdk.users.unlock_user(UserServiceUnlockUserRequest(user_id=user_id)))
    assert (unlock.status, unlock.code) == (400, "failed_precondition")
    reactivate = sdk_error(lambda: sdk.users.reactivate_user(UserServiceReactivateUserRequest(user_id=user_id)))
    assert (reactivate.status, reactivate.code) == (400, "failed_precondition")
    sdk.users.deactivate_user(UserServiceDeactivateUserRequest(user_id=user_id))
    twice = sdk_error(lambda: sdk.users.deactivate_user(UserServiceDeactivateUserRequest(user_id=user_id)))
    assert (twice.status, twice.code) == (400, "failed_precondition")
    lock = sdk_error(lambda: sdk.users.lock_user(UserServiceLockUserRequest(user_id=user_id)))
    assert (lock.status, lock.code) == (400, "failed_precondition")
    assert get_user(sdk, user_id).state == UserServiceUserState.USER_STATE_INACTIVE


@pytest.mark.parametrize("method, request_type", [
    ("lock_user", UserServiceLockUserRequest), ("unlock_user", UserServiceUnlockUserRequest),
    ("deactivate_user", UserServiceDeactivateUserRequest), ("reactivate_user", UserServiceReactivateUserRequest),
    ("delete_user", UserServiceDeleteUserRequest), ("register_totp", UserServiceRegisterTOTPRequest),
    ("remove_totp", UserServiceRemoveTOTPRequest), ("get_user_by_id", UserServiceGetUserByIDRequest),
])
def test_unknown_user_is_not_found(sdk, method: str, request_type) -> None:  # type: ignore[no-untyped-def]
    error = sdk_error(lambda: getattr(sdk.users, method)(request_type(user_id="404404404")))
    assert (error.status, error.code, error.error_id) == (404, "not_found", "QUERY-Dfbg2")


# ---- TOTP ----------------------------------------------------------------------------------------


def test_register_verify_and_remove_totp(sdk) -> None:  # type: ignore[no-untyped-def]
    username = unique("otp")
    user_id = add_human(sdk, username=username)
    registration = sdk.users.register_totp(UserServiceRegisterTOTPRequest(user_id=user_id))
    assert registration.secret and len(registration.secret) >= 16
    assert registration.uri.startswith("otpauth://totp/")
    parsed = pyotp.parse_uri(registration.uri)
    assert parsed.secret == registration.secret
    assert parsed.issuer == "Tessera"
    assert parsed.name == f"{username}@{DOMAIN}"
    assert int(registration.details.sequence) == 2

    wrong = sdk_error(lambda: sdk.users.verify_totp_registration(UserServiceVerifyTOTPRegistrationRequest(
        user_id=user_id, code="000000" if pyotp.TOTP(registration.secret).now() != "000000" else "111111")))
    assert (wrong.status, wrong.code) == (400, "invalid_argument")

    verified = sdk.users.verify_totp_registration(UserServiceVerifyTOTPRegistrationRequest(
        user_id=user_id, code=pyotp.TOTP(registration.secret).now()))
    assert int(verified.details.sequence) == 3
    again = sdk_error(lambda: sdk.users.register_totp(UserServiceRegisterTOTPRequest(user_id=user_id)))
    assert (again.status, again.code) == (409, "already_exists")

    removed = sdk.users.remove_totp(UserServiceRemoveTOTPRequest(user_id=user_id))
    assert int(removed.details.sequence) == 4
    twice = sdk_error(lambda: sdk.users.remove_totp(UserServiceRemoveTOTPRequest(user_id=user_id)))
    assert (twice.status, twice.code) == (404, "not_found")
    # after removal a new registration starts over with a new secret
    fresh = sdk.users.register_totp(UserServiceRegisterTOTPRequest(user_id=user_id))
    assert fresh.secret != registration.secret


def test_verify_totp_without_registration_fails(sdk) -> None:  # type: ignore[no-untyped-def]
    user_id = add_human(sdk)
    error = sdk_error(lambda: sdk.users.verify_totp_registration(UserServiceVerifyTOTPRegistrationRequest(
        user_id=user_id, code="123456")))
    assert (error.status, error.code) == (400, "failed_precondition")


# ---- personal access tokens ------------------------------------------------------------------------


def test_personal_access_tokens_lifecycle(sdk, server: ServerProcess) -> None:  # type: ignore[no-untyped-def]
    org_id = default_org_id(sdk)
    machine_id = add_machine(sdk, org_id=org_id)
    expiry = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    added = sdk.users.add_personal_access_token(UserServiceAddPersonalAccessTokenRequest(
        user_id=machine_id, expiration_date=expiry))
    assert added.token_id and added.token and added.creation_date is not None
    second_id, _ = add_pat(sdk, machine_id)

    listed = sdk.users.list_personal_access_tokens(UserServiceListPersonalAccessTokensRequest(
        filters=[UserServicePersonalAccessTokensSearchFilter(user_id_filter=UserServiceIDFilter(id=machine_id))],
        pagination=UserServicePaginationRequest(asc=True)))
    assert [t.id for t in listed.result] == [added.token_id, second_id]
    assert int(listed.pagination.total_result) == 2
    first = listed.result[0]
    assert first.user_id == machine_id
    assert first.organization_id == org_id
    assert first.expiration_date == expiry
    assert listed.result[1].expiration_date is None or listed.result[1].expiration_date.year >= 9999

    by_token = sdk.users.list_personal_access_tokens(UserServiceListPersonalAccessTokensRequest(
        filters=[UserServicePersonalAccessTokensSearchFilter(token_id_filter=UserServiceIDFilter(id=second_id))]))
    assert [t.id for t in by_token.result] == [second_id]

    # the new token authenticates as the machine user, which may read itself
    robot = zitadel_client.Zitadel.with_access_token(server.url, added.token)
    assert get_user(robot, machine_id).user_id == machine_id

    removed = sdk.users.remove_personal_access_token(UserServiceRemovePersonalAccessTokenRequest(
        user_id=machine_id, token_id=added.token_id))
    assert removed.deletion_date is not None
    after = sdk.users.list_personal_access_tokens(UserServiceListPersonalAccessTokensRequest(
        filters=[UserServicePersonalAccessTokensSearchFilter(user_id_filter=UserServiceIDFilter(id=machine_id))]))
    assert [t.id for t in after.result] == [second_id]
    again = sdk_error(lambda: sdk.users.remove_personal_access_token(UserServiceRemovePersonalAccessTokenRequest(
        user_id=machine_id, token_id=added.token_id)))
    assert (again.status, again.code) == (404, "not_found")


def test_humans_cannot_have_personal_access_tokens(sdk) -> None:  # type: ignore[no-untyped-def]
    user_id = add_human(sdk)
    error = sdk_error(lambda: sdk.users.add_personal_access_token(
        UserServiceAddPersonalAccessTokenRequest(user_id=user_id)))
    assert (error.status, error.code) == (400, "failed_precondition")


def test_pat_expiration_in_the_past_is_rejected(sdk) -> None:  # type: ignore[no-untyped-def]
    machine_id = add_machine(sdk, org_id=default_org_id(sdk))
    error = sdk_error(lambda: sdk.users.add_personal_access_token(UserServiceAddPersonalAccessTokenRequest(
        user_id=machine_id, expiration_date=datetime(2020, 1, 1, tzinfo=UTC))))
    assert (error.status, error.code) == (400, "invalid_argument")
