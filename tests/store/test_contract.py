"""The storage contract: the same in-process tests on SQLite and PostgreSQL.

Each test gets an empty database of each backend (the ``database_url`` fixture), migrates it and
drives the services and store functions directly, as the system (``principal=None``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select

from tessera.auth.permissions import INSTANCE_SCOPE
from tessera.clock import now_us
from tessera.container import Container
from tessera.crypto import tokens
from tessera.errors import Code, TesseraError
from tessera.store import migrate
from tessera.store import users as store
from tessera.store.schema import events, metadata, org_domains, organizations, personal_access_tokens, users
from tessera.users.model import HUMAN, MACHINE, UserState
from tessera.users.orgs import OrgAdmin
from tessera.users.queries import (
    AndQuery,
    IdsQuery,
    KindQuery,
    NotQuery,
    OrgQuery,
    OrQuery,
    Page,
    StateQuery,
    TextMethod,
    TextQuery,
    UserField,
    UserSort,
)
from tessera.users.service import NewHuman, NewMachine, Profile

T = TypeVar("T")
PASSWORD = "Contract-pw-1"
ALL = Page(offset=0, limit=100, asc=True)


def run(awaitable: Awaitable[T]) -> T:
    async def wrapper() -> T:
        return await awaitable
    return asyncio.run(wrapper())


def human(org_id: str, username: str, *, email: str | None = None, given: str = "Given", family: str = "Family",
          password: str | None = PASSWORD) -> NewHuman:
    return NewHuman(org_id=org_id, org_domain=None, username=username, email=email or f"{username}@example.com",
                    profile=Profile(given_name=given, family_name=family), password=password)


def new_org(c: Container, name: str, domain: str = "") -> str:
    org_id, _, _ = run(c.orgs.add(None, name, domain=domain))
    return org_id


def rows(c: Container, query: Any) -> list[Any]:
    return c.db.run_sync(lambda conn: list(conn.execute(query).all()))


def user_events(c: Container, user_id: str) -> list[tuple[int, str]]:
    return [(r.sequence, r.type) for r in rows(c, select(events).where(
        events.c.aggregate_type == "user", events.c.aggregate_id == user_id).order_by(events.c.sequence))]


def count(c: Container, table: Any) -> int:
    return int(c.db.run_sync(lambda conn: conn.execute(select(func.count()).select_from(table)).scalar_one()))


def error_of(awaitable: Awaitable[Any]) -> TesseraError:
    with pytest.raises(TesseraError) as info:
        run(awaitable)
    return info.value


# ---- migrations ------------------------------------------------------------------------------------


def test_migrations_are_idempotent_and_match_the_schema(container: Container) -> None:
    container.migrate()  # a second run changes nothing and does not fail
    container.migrate()
    assert not migrate.pending(container.db)
    tables = set(container.db.run_sync(lambda conn: inspect(conn).get_table_names()))
    assert {"instances", "organizations", "org_domains", "users", "memberships", "personal_access_tokens",
            "events", "alembic_version"} <= tables

    def differences(conn: Any) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))
    assert container.db.run_sync(differences) == []


# ---- users: insert, read, login names --------------------------------------------------------------


def test_insert_and_get_a_human(container: Container) -> None:
    org_id = new_org(container, "Acme", "acme.test")
    before = now_us()
    user_id, details = run(container.users.add_human(None, human(org_id, "Ada.L", email="Ada@Example.com",
                                                                  given="Ada", family="Lovelace")))
    assert (details.sequence, details.resource_owner) == (1, org_id)
    assert details.creation_date is not None and details.creation_date >= before

    user = run(container.users.load(user_id))
    assert (user.id, user.org_id, user.kind, user.username) == (user_id, org_id, HUMAN, "Ada.L")
    assert user.state == UserState.ACTIVE
    assert (user.given_name, user.family_name, user.email) == ("Ada", "Lovelace", "Ada@Example.com")
    assert user.login_names == ["Ada.L@acme.test"]
    assert user.preferred_login_name == "Ada.L@acme.test"
    assert user.has_password and user.password_changed_at is not None
    assert user.sequence == 1 and user.created_at == user.changed_at

    stored = container.db.run_sync(lambda conn: store.get_password_hash(conn, user_id))
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored
    assert run(container.hashing.verify(stored, PASSWORD)).ok
    assert run(container.users.find_by_id("missing")) is None


def test_insert_and_get_a_machine_with_a_role(container: Container) -> None:
    org_id = new_org(container, "Machines", "machines.test")
    user_id, _ = run(container.users.add_machine(None, NewMachine(org_id=org_id, username="", name="Bot"),
                                                 role=(INSTANCE_SCOPE, "IAM_OWNER")))
    user = run(container.users.load(user_id))
    assert (user.kind, user.username, user.machine_name) == (MACHINE, user_id, "Bot")
    grants = container.db.run_sync(lambda conn: store.grants_of(conn, user_id))
    assert grants == frozenset({(INSTANCE_SCOPE, "IAM_OWNER")})


@pytest.mark.parametrize("login_name", ["alice", "ALICE", "Alice", "alice@acme.test", "ALICE@ACME.TEST",
                                        "alice@second.test"])
def test_find_by_login_name_is_case_insensitive(container: Container, login_name: str) -> None:
    org_id = new_org(container, "Acme", "acme.test")
    container.db.run_sync(lambda conn: conn.execute(org_domains.insert().values(
        domain_lower="second.test", org_id=org_id, domain="Second.test", is_primary=False)))
    user_id, _ = run(container.users.add_human(None, human(org_id, "Alice")))
    found = run(container.users.find_by_login_name(login_name))
    assert found is not None and found.id == user_id
    assert found.login_names == ["Alice@acme.test", "Alice@Second.test"]


@pytest.mark.parametrize("login_name", ["alicex", "alice@other.test", "alice@", "@acme.test", "", "bob@acme.test"])
def test_find_by_login_name_misses(container: Container, login_name: str) -> None:
    org_id = new_org(container, "Acme", "acme.test")
    new_org(container, "Other", "other.test")
    run(container.users.add_human(None, human(org_id, "alice")))
    assert run(container.users.find_by_login_name(login_name)) is None


def test_exact_username_wins_over_username_at_domain(container: Container) -> None:
    acme = new_org(container, "Acme", "acme.test")
    plain, _ = run(container.users.add_human(None, human(acme, "bob")))
    literal, _ = run(container.users.add_human(None, human(acme, "bob@acme.test")))
    assert run(container.users.find_by_login_name("BOB@acme.test")).id == literal  # type: ignore[union-attr]
    assert run(container.users.find_by_login_name("bob")).id == plain  # type: ignore[union-attr]


def test_usernames_are_unique_ignoring_case(container: Container) -> None:
    a = new_org(container, "A", "a.test")
    b = new_org(container, "B", "b.test")
    run(container.users.add_human(None, human(a, "Carol")))
    duplicate = error_of(container.users.add_human(None, human(b, "carol")))
    assert (duplicate.code, duplicate.error_id) == (Code.ALREADY_EXISTS, "COMMAND-k2unb")
    machine = error_of(container.users.add_machine(None, NewMachine(org_id=a, username="CAROL", name="x")))
    assert machine.code == Code.ALREADY_EXISTS
    assert count(container, users) == 1
    same_id = error_of(container.users.add_human(None, NewHuman(
        org_id=a, org_domain=None, user_id=run(container.users.find_by_login_name("carol")).id,  # type: ignore[union-attr]
        username="dave", email="d@example.com", profile=Profile(given_name="D", family_name="D"))))
    assert (same_id.code, same_id.error_id) == (Code.ALREADY_EXISTS, "COMMAND-k4mS9")


def test_unknown_organization_is_not_found(container: Container) -> None:
    error = error_of(container.users.add_human(None, human("no-such-org", "eve")))
    assert error.code == Code.NOT_FOUND
    by_domain = error_of(container.users.add_human(None, NewHuman(
        org_id=None, org_domain="nowhere.test", username="eve", email="e@example.com",
        profile=Profile(given_name="E", family_name="E"))))
    assert by_domain.code == Code.NOT_FOUND
    assert count(container, users) == 0


# ---- list queries ------------------------------------------------------------------------------------


@pytest.fixture
def people(container: Container) -> dict[str, str]:
    acme = new_org(container, "Acme", "acme.test")
    beta = new_org(container, "Beta", "beta.test")
    ids = {
        "alice": run(container.users.add_human(None, human(acme, "alice", email="Alice@Acme.test", given="Alice",
                                                              family="Zimmer")))[0],
        "bob": run(container.users.add_human(None, human(acme, "bob", email="bob@beta.test", given="Bob",
                                                            family="Young")))[0],
        "carol": run(container.users.add_human(None, human(beta, "carol", email="carol@beta.test",
                                                              given="Carol", family="Xavier")))[0],
        "robot": run(container.users.add_machine(None, NewMachine(org_id=beta, username="robot_1", name="R")))[0],
    }
    run(container.users.lock(None, ids["carol"]))
    return {**ids, "acme": acme, "beta": beta}


def usernames(container: Container, query: Any, page: Page = ALL, sort: UserSort = UserSort.USER_NAME) -> list[str]:
    total, found = run(container.users.list(None, query, page, sort))
    assert total >= len(found)
    return [u.username for u in found]


@pytest.mark.parametrize("query, expected", [
    (TextQuery(UserField.USERNAME, "bob", TextMethod.EQUALS), ["bob"]),
    (TextQuery(UserField.USERNAME, "BOB", TextMethod.EQUALS), []),
    (TextQuery(UserField.USERNAME, "BOB", TextMethod.EQUALS_IGNORE_CASE), ["bob"]),
    (TextQuery(UserField.USERNAME, "ca", TextMethod.STARTS_WITH), ["carol"]),
    (TextQuery(UserField.USERNAME, "CA", TextMethod.STARTS_WITH_IGNORE_CASE), ["carol"]),
    (TextQuery(UserField.USERNAME, "o", TextMethod.CONTAINS), ["bob", "carol", "robot_1"]),
    (TextQuery(UserField.USERNAME, "LIC", TextMethod.CONTAINS_IGNORE_CASE), ["alice"]),
    (TextQuery(UserField.USERNAME, "_1", TextMethod.ENDS_WITH), ["robot_1"]),
    (TextQuery(UserField.USERNAME, "_", TextMethod.CONTAINS), ["robot_1"]),  # LIKE wildcards are escaped
    (TextQuery(UserField.USERNAME, "%", TextMethod.CONTAINS), []),
    (TextQuery(UserField.USERNAME, "OL", TextMethod.ENDS_WITH_IGNORE_CASE), ["carol"]),
    (TextQuery(UserField.USERNAME, "OL", TextMethod.ENDS_WITH), []),
    (TextQuery(UserField.EMAIL, "alice@acme.test", TextMethod.EQUALS_IGNORE_CASE), ["alice"]),
    (TextQuery(UserField.EMAIL, "@beta.test", TextMethod.ENDS_WITH), ["bob", "carol"]),
    (TextQuery(UserField.FIRST_NAME, "Bob", TextMethod.EQUALS), ["bob"]),
    (TextQuery(UserField.LAST_NAME, "x", TextMethod.STARTS_WITH_IGNORE_CASE), ["carol"]),
    (TextQuery(UserField.LOGIN_NAME, "alice@acme.test", TextMethod.EQUALS), ["alice"]),
    (TextQuery(UserField.LOGIN_NAME, "ALICE@ACME.TEST", TextMethod.EQUALS_IGNORE_CASE), ["alice"]),
    (TextQuery(UserField.LOGIN_NAME, "@beta.test", TextMethod.ENDS_WITH), ["carol", "robot_1"]),
    (TextQuery(UserField.LOGIN_NAME, "bob@beta.test", TextMethod.EQUALS), []),
    (KindQuery("machine"), ["robot_1"]),
    (KindQuery("human"), ["alice", "bob", "carol"]),
    (StateQuery(int(UserState.LOCKED)), ["carol"]),
    (NotQuery(StateQuery(int(UserState.ACTIVE))), ["carol"]),
    (AndQuery(()), ["alice", "bob", "carol", "robot_1"]),
    (OrQuery(()), []),
    (IdsQuery(()), []),
])
def test_list_users_by_text_kind_state_and_logic(container: Container, people: dict[str, str], query: Any,
                                                 expected: list[str]) -> None:
    assert usernames(container, query) == expected


def test_list_users_by_ids_org_and_combinations(container: Container, people: dict[str, str]) -> None:
    assert usernames(container, IdsQuery((people["alice"], people["robot"], "missing"))) == ["alice", "robot_1"]
    assert usernames(container, OrgQuery(people["acme"])) == ["alice", "bob"]
    assert usernames(container, AndQuery((OrgQuery(people["beta"]), KindQuery("human")))) == ["carol"]
    assert usernames(container, OrQuery((OrgQuery(people["acme"]), KindQuery("machine")))) == [
        "alice", "bob", "robot_1"]
    assert usernames(container, AndQuery((OrgQuery(people["beta"]), NotQuery(OrQuery((
        KindQuery("machine"), TextQuery(UserField.USERNAME, "bob", TextMethod.EQUALS))))))) == ["carol"]


def test_list_users_paging_and_sorting(container: Container, people: dict[str, str]) -> None:
    total, page = run(container.users.list(None, None, Page(offset=1, limit=2, asc=True), UserSort.USER_NAME))
    assert total == 4
    assert [u.username for u in page] == ["bob", "carol"]
    assert usernames(container, None, Page(offset=4, limit=2, asc=True)) == []
    assert usernames(container, None, Page(0, 10, asc=False)) == ["robot_1", "carol", "bob", "alice"]
    humans = KindQuery("human")
    assert usernames(container, humans, sort=UserSort.LAST_NAME) == ["carol", "bob", "alice"]
    assert usernames(container, humans, sort=UserSort.FIRST_NAME) == ["alice", "bob", "carol"]
    assert usernames(container, humans, sort=UserSort.EMAIL) == ["alice", "bob", "carol"]
    assert usernames(container, None, sort=UserSort.CREATION_DATE) == ["alice", "bob", "carol", "robot_1"]
    assert usernames(container, humans, Page(0, 10, asc=False), sort=UserSort.STATE) == ["carol", "alice", "bob"]


# ---- state changes, sequences and events --------------------------------------------------------------


def test_state_changes_bump_the_sequence_and_append_events(container: Container) -> None:
    org_id = new_org(container, "Acme", "acme.test")
    user_id, _ = run(container.users.add_human(None, human(org_id, "frank")))
    steps = [container.users.lock, container.users.unlock, container.users.deactivate, container.users.reactivate]
    for sequence, step in enumerate(steps, start=2):
        details = run(step(None, user_id))
        assert (details.sequence, details.resource_owner) == (sequence, org_id)
        assert run(container.users.load(user_id)).sequence == sequence
    details = run(container.users.set_password(None, user_id, "Changed-pw-9", False))
    assert details.sequence == 6
    assert user_events(container, user_id) == [
        (1, "user.human.added"), (2, "user.locked"), (3, "user.unlocked"), (4, "user.deactivated"),
        (5, "user.reactivated"), (6, "user.human.password.changed")]
    assert run(container.users.load(user_id)).state == UserState.ACTIVE

    run(container.users.delete(None, user_id))
    assert run(container.users.find_by_id(user_id)) is None
    assert user_events(container, user_id)[-1] == (7, "user.removed")
    # nothing secret in the audit log
    payloads = " ".join(r.payload or "" for r in rows(container, select(events)))
    assert PASSWORD not in payloads and "Changed-pw-9" not in payloads and "argon2" not in payloads


def test_rejected_state_change_writes_nothing(container: Container) -> None:
    org_id = new_org(container, "Acme", "acme.test")
    user_id, _ = run(container.users.add_human(None, human(org_id, "gina")))
    error = error_of(container.users.unlock(None, user_id))
    assert error.code == Code.FAILED_PRECONDITION
    assert run(container.users.load(user_id)).sequence == 1
    assert user_events(container, user_id) == [(1, "user.human.added")]
    weak = error_of(container.users.set_password(None, user_id, "weak", False))
    assert weak.code == Code.INVALID_ARGUMENT
    assert user_events(container, user_id) == [(1, "user.human.added")]


def test_totp_secret_is_stored_sealed(container: Container) -> None:
    import pyotp

    from tessera.auth.principal import Principal

    org_id = new_org(container, "Acme", "acme.test")
    user_id, _ = run(container.users.add_human(None, human(org_id, "hank")))
    system = Principal(user_id="system", org_id=org_id, is_machine=True, method="pat",
                       grants=frozenset({(INSTANCE_SCOPE, "IAM_OWNER")}))
    registration = run(container.users.register_totp(system, user_id))
    sealed, ready, _ = container.db.run_sync(lambda conn: store.get_totp_secret(conn, user_id))
    assert sealed and registration.secret not in sealed and not ready
    assert container.sealer.open(sealed) == registration.secret
    run(container.users.verify_totp_registration(system, user_id, pyotp.TOTP(registration.secret).now()))
    assert run(container.users.load(user_id)).totp_ready
    run(container.users.remove_totp(system, user_id))
    assert container.db.run_sync(lambda conn: store.get_totp_secret(conn, user_id)) == (None, False, None)
    assert [t for _, t in user_events(container, user_id)][1:] == [
        "user.human.otp.added", "user.human.otp.verified", "user.human.otp.removed"]


# ---- personal access tokens ------------------------------------------------------------------------


def test_pat_lookup_by_hash_and_revocation(container: Container) -> None:
    org_id = new_org(container, "Acme", "acme.test")
    machine_id, _ = run(container.users.add_machine(None, NewMachine(org_id=org_id, username="ci", name="CI"),
                                                    role=(INSTANCE_SCOPE, "IAM_USER_MANAGER")))
    pat = run(container.users.add_pat(None, machine_id, None))
    assert pat.token.startswith(tokens.PAT_PREFIX)
    stored = rows(container, select(personal_access_tokens))
    assert len(stored) == 1 and stored[0].token_hash == tokens.hash_token(pat.token)
    assert pat.token.encode() not in stored[0].token_hash

    row = container.db.run_sync(lambda conn: store.find_pat(conn, tokens.hash_token(pat.token)))
    assert (row.id, row.user_id, row.org_id, row.kind) == (pat.token_id, machine_id, org_id, MACHINE)
    assert container.db.run_sync(lambda conn: store.find_pat(conn, tokens.hash_token(pat.token + "x"))) is None

    principal = run(container.authenticator.authenticate(f"Bearer {pat.token}"))
    assert (principal.user_id, principal.org_id, principal.method) == (machine_id, org_id, "pat")
    assert principal.grants == frozenset({(INSTANCE_SCOPE, "IAM_USER_MANAGER")})

    total, listed = run(container.users.list_pats(None, (machine_id,), None, None, ALL))
    assert total == 1 and listed[0].id == pat.token_id and listed[0].expires_at is None
    run(container.users.remove_pat(None, machine_id, pat.token_id))
    assert container.db.run_sync(lambda conn: store.find_pat(conn, tokens.hash_token(pat.token))) is None
    assert error_of(container.authenticator.authenticate(f"Bearer {pat.token}")).code == Code.UNAUTHENTICATED
    assert [t for _, t in user_events(container, machine_id)] == [
        "user.machine.added", "user.personal.access.token.added", "user.personal.access.token.removed"]


def test_expired_pat_and_pat_of_inactive_user_do_not_authenticate(container: Container) -> None:
    org_id = new_org(container, "Acme", "acme.test")
    machine_id, _ = run(container.users.add_machine(None, NewMachine(org_id=org_id, username="ci", name="CI")))
    expiring = run(container.users.add_pat(None, machine_id, now_us() + 60_000_000))
    assert run(container.authenticator.authenticate(f"Bearer {expiring.token}")).user_id == machine_id
    container.db.run_sync(lambda conn: conn.execute(personal_access_tokens.update().values(
        expires_at=now_us() - 1)))
    assert error_of(container.authenticator.authenticate(f"Bearer {expiring.token}")).code == Code.UNAUTHENTICATED

    lasting = run(container.users.add_pat(None, machine_id, None))
    run(container.users.deactivate(None, machine_id))
    assert error_of(container.authenticator.authenticate(f"Bearer {lasting.token}")).code == Code.UNAUTHENTICATED
    run(container.users.reactivate(None, machine_id))
    assert run(container.authenticator.authenticate(f"Bearer {lasting.token}")).user_id == machine_id


def test_deleting_a_user_removes_its_tokens_and_memberships(container: Container) -> None:
    org_id = new_org(container, "Acme", "acme.test")
    machine_id, _ = run(container.users.add_machine(None, NewMachine(org_id=org_id, username="ci", name="CI"),
                                                    role=(org_id, "ORG_OWNER")))
    pat = run(container.users.add_pat(None, machine_id, None))
    run(container.users.delete(None, machine_id))
    assert count(container, personal_access_tokens) == 0
    assert container.db.run_sync(lambda conn: store.grants_of(conn, machine_id)) == frozenset()
    assert error_of(container.authenticator.authenticate(f"Bearer {pat.token}")).code == Code.UNAUTHENTICATED


def test_concurrent_writes_to_one_user_lose_nothing(container: Container) -> None:
    org_id = new_org(container, "Acme", "acme.test")
    machine_id, _ = run(container.users.add_machine(None, NewMachine(org_id=org_id, username="ci", name="CI")))

    async def many() -> list[Any]:
        return list(await asyncio.gather(*(container.users.add_pat(None, machine_id, None) for _ in range(8))))

    created = run(many())
    assert len({p.token_id for p in created}) == 8
    assert run(container.users.load(machine_id)).sequence == 9
    assert [s for s, _ in user_events(container, machine_id)] == list(range(1, 10))
    assert count(container, personal_access_tokens) == 8


# ---- organizations -----------------------------------------------------------------------------------


def test_organizations_are_unique_by_name_and_domain(container: Container) -> None:
    org_id = new_org(container, "Acme Corp", "")
    org = run(container.orgs.get(org_id))
    assert org is not None and org.primary_domain == "acme-corp.tessera.localhost" and org.sequence == 1
    assert error_of(container.orgs.add(None, "ACME CORP")).code == Code.ALREADY_EXISTS
    assert error_of(container.orgs.add(None, "Other", domain="Acme-Corp.tessera.localhost")).code == \
        Code.ALREADY_EXISTS
    assert error_of(container.orgs.add(None, "  ")).code == Code.INVALID_ARGUMENT
    assert count(container, organizations) == 1
    assert [(r.aggregate_id, r.sequence, r.type) for r in rows(container, select(events).where(
        events.c.aggregate_type == "org"))] == [(org_id, 1, "org.added")]


def test_failed_organization_creation_leaves_nothing_behind(container: Container) -> None:
    home = new_org(container, "Home", "home.test")
    run(container.users.add_human(None, human(home, "taken")))
    before = (count(container, organizations), count(container, users), count(container, events))
    admins = [OrgAdmin(human=human("", "fresh-admin")), OrgAdmin(human=human("", "TAKEN"))]
    error = error_of(container.orgs.add(None, "Doomed", admins=admins))
    assert (error.code, error.error_id) == (Code.ALREADY_EXISTS, "COMMAND-k2unb")
    assert (count(container, organizations), count(container, users), count(container, events)) == before
    assert run(container.users.find_by_login_name("fresh-admin")) is None
    unknown_role = error_of(container.orgs.add(None, "Doomed", admins=[
        OrgAdmin(human=human("", "fresh-admin"), roles=("NOT_A_ROLE",))]))
    assert unknown_role.code == Code.INVALID_ARGUMENT
    assert (count(container, organizations), count(container, users), count(container, events)) == before


def test_organization_with_admins(container: Container) -> None:
    home = new_org(container, "Home", "home.test")
    existing, _ = run(container.users.add_human(None, human(home, "existing")))
    org_id, details, admin_ids = run(container.orgs.add(None, "Team", domain="team.test", admins=[
        OrgAdmin(human=human("", "lead")), OrgAdmin(user_id=existing, roles=("ORG_USER_MANAGER",))]))
    assert details.sequence == 1 and len(admin_ids) == 2 and admin_ids[1] == existing
    lead = run(container.users.load(admin_ids[0]))
    assert lead.org_id == org_id and lead.preferred_login_name == "lead@team.test"
    assert container.db.run_sync(lambda conn: store.grants_of(conn, admin_ids[0])) == {(org_id, "ORG_OWNER")}
    assert container.db.run_sync(lambda conn: store.grants_of(conn, existing)) == {(org_id, "ORG_USER_MANAGER")}
    total, orgs = run(container.orgs.list(None, [], ALL, "name"))
    assert total == 2 and [o.name for o in orgs] == ["Home", "Team"]
    event_payloads = [json.loads(r.payload) for r in rows(container, select(events).where(
        events.c.aggregate_id == admin_ids[0]))]
    assert event_payloads == [{"username": "lead", "orgID": org_id}]


def test_concurrent_creation_of_one_username_fails_cleanly(container: Container) -> None:
    # Every contender passes the up-front check at once; the database's unique index decides,
    # and the losers get already_exists, not an internal error.
    org_id = new_org(container, "Acme", "acme.test")

    async def race(username: str) -> list[Any]:
        return list(await asyncio.gather(
            *(container.users.add_human(None, human(org_id, username, password=None)) for _ in range(8)),
            return_exceptions=True))

    for round_ in range(10):
        outcomes = run(race(f"racer{round_}"))
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(outcomes) - len(failed) == 1
        assert {(type(e), getattr(e, "code", None)) for e in failed} == {(TesseraError, Code.ALREADY_EXISTS)}
    assert count(container, users) == 10


def test_listing_shows_only_what_the_caller_may_read(container: Container) -> None:
    from tessera.auth.principal import Principal

    acme = new_org(container, "Acme", "acme.test")
    beta = new_org(container, "Beta", "beta.test")
    run(container.users.add_human(None, human(acme, "in-acme")))
    run(container.users.add_human(None, human(beta, "in-beta")))
    manager_id, _ = run(container.users.add_machine(None, NewMachine(org_id=beta, username="acme-manager",
                                                                     name="M"), role=(acme, "ORG_USER_MANAGER")))
    manager = Principal(user_id=manager_id, org_id=beta, is_machine=True, method="pat",
                        grants=frozenset({(acme, "ORG_USER_MANAGER")}))
    total, visible = run(container.users.list(manager, None, ALL, UserSort.USER_NAME))
    assert (total, [u.username for u in visible]) == (2, ["acme-manager", "in-acme"])
    nobody = Principal(user_id=manager_id, org_id=beta, is_machine=True, method="pat")
    assert [u.username for u in run(container.users.list(nobody, None, ALL, UserSort.USER_NAME))[1]] == [
        "acme-manager"]
    _, orgs = run(container.orgs.list(manager, [], ALL, "name"))
    assert [o.name for o in orgs] == ["Acme", "Beta"]  # its own org and the one it manages
    assert [o.name for o in run(container.orgs.list(nobody, [], ALL, "name"))[1]] == ["Beta"]
    total_pats, _ = run(container.users.list_pats(nobody, None, None, None, ALL))
    assert total_pats == 0
