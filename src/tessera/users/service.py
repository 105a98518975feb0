"""User commands and queries: the rules; SQL lives in ``store.users``.

Every write is one transaction that updates the user's state and appends an audit event.
"""

from __future__ import annotations

import builtins
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyotp
from sqlalchemy import Connection, and_

from ..auth import permissions as perm
from ..auth.principal import Principal
from ..clock import now_us
from ..crypto import tokens
from ..crypto.passwords import PasswordHashing, is_supported_hash
from ..crypto.sealing import Sealer
from ..errors import already_exists, failed_precondition, invalid_argument, not_found
from ..ids import new_id
from ..store import events
from ..store import user_queries as sql_queries
from ..store import users as store
from ..store.db import Database
from .model import HUMAN, MACHINE, AccessTokenType, Organization, User, UserState, WriteDetails
from .passwords import PasswordPolicy
from .queries import Page, UserQuery, UserSort

# Hooks other aggregates register to react to user changes in the same transaction
# (the session store terminates a locked user's sessions, for example).
UserHook = Callable[[Connection, str, int, str | None], None]


@dataclass(frozen=True)
class Profile:
    given_name: str = ""
    family_name: str = ""
    nick_name: str = ""
    display_name: str = ""
    preferred_language: str = ""
    gender: int = 0


@dataclass(frozen=True)
class NewHuman:
    org_id: str | None
    org_domain: str | None
    profile: Profile
    email: str
    user_id: str = ""
    username: str = ""
    email_verified: bool = False
    phone: str = ""
    phone_verified: bool = False
    password: str | None = None
    hashed_password: str | None = None
    password_change_required: bool = False


@dataclass(frozen=True)
class PreparedHuman:
    new: NewHuman
    user_id: str
    username: str
    password_hash: str | None


@dataclass(frozen=True)
class NewMachine:
    org_id: str
    username: str
    name: str
    user_id: str = ""
    description: str = ""
    access_token_type: AccessTokenType = AccessTokenType.BEARER


@dataclass(frozen=True)
class NewPat:
    token_id: str
    token: str
    created_at: int


@dataclass(frozen=True)
class PatInfo:
    id: str
    user_id: str
    org_id: str
    created_at: int
    expires_at: int | None


@dataclass(frozen=True)
class TotpRegistration:
    uri: str
    secret: str
    details: WriteDetails


def _user_not_found() -> Exception:
    return not_found("QUERY-Dfbg2", "User could not be found")


def _check_lengths(*fields: tuple[str, str, int]) -> None:
    """Each (value, name, maximum): the column sizes, checked up front so every database answers alike."""
    for value, name, maximum in fields:
        if len(value) > maximum:
            raise invalid_argument("USER-fLen1", f"{name} must be at most {maximum} characters")


class UserService:
    def __init__(
        self,
        db: Database,
        hashing: PasswordHashing,
        policy: PasswordPolicy,
        sealer: Sealer,
        issuer_name: str = "Tessera",
    ) -> None:
        self.db = db
        self.hashing = hashing
        self.policy = policy
        self.sealer = sealer
        self.issuer_name = issuer_name
        self.on_deactivated: list[UserHook] = []  # locked, deactivated or deleted
        self.on_password_changed: list[UserHook] = []

    # ---- helpers -----------------------------------------------------------------------------

    async def load(self, user_id: str) -> User:
        """The user, without any permission check (for the system and the CLI)."""
        user = await store.read_user(self.db, user_id)
        if user is None:
            raise _user_not_found()
        return user

    def _event(self, conn: Connection, user: User, sequence: int, kind: str, creator: str | None,
               at: int, payload: dict[str, Any] | None = None) -> WriteDetails:
        events.append(conn, aggregate_type="user", aggregate_id=user.id, sequence=sequence,
                      event_type=kind, creator=creator, at=at, payload=payload)
        return WriteDetails(sequence=sequence, change_date=at, resource_owner=user.org_id)

    async def _change(
        self,
        principal: Principal | None,
        user_id: str,
        permission: str,
        event_type: str,
        mutate: Callable[[User], dict[str, Any]],
        *,
        allow_self: bool = False,
        hooks: list[UserHook] | None = None,
    ) -> WriteDetails:
        """Load the user under a row lock, apply ``mutate``'s column values, record the event."""
        def tx(conn: Connection) -> WriteDetails:
            user = store.get_user(conn, user_id, for_update=True)
            if user is None:
                raise _user_not_found()
            if principal is not None and not (allow_self and principal.user_id == user.id):
                principal.require(permission, user.org_id)
            values = mutate(user)
            at = now_us()
            sequence = store.update_user(conn, user.id, values, at=at)
            details = self._event(conn, user, sequence, event_type, principal.user_id if principal else None, at)
            for hook in hooks or ():
                hook(conn, user.id, at, principal.user_id if principal else None)
            return details
        return await self.db.write(tx)

    # ---- creation ----------------------------------------------------------------------------

    async def prepare_human(self, new: NewHuman) -> PreparedHuman:
        """Validate a new human and hash its password (slow, so outside any transaction)."""
        if not new.email:
            raise invalid_argument("USER-e4Gnh", "Email address is required")
        if not new.profile.given_name or not new.profile.family_name:
            raise invalid_argument("USER-4GB8a", "Given name and family name are required")
        p = new.profile
        _check_lengths((p.given_name, "profile.givenName", 200), (p.family_name, "profile.familyName", 200),
                       (p.nick_name, "profile.nickName", 200), (p.display_name, "profile.displayName", 200),
                       (p.preferred_language, "profile.preferredLanguage", 20), (new.email, "email", 320),
                       (new.phone, "phone", 40), (new.hashed_password or "", "hashedPassword.hash", 255))
        password_hash: str | None = None
        if new.password is not None:
            self.policy.check(new.password)
            password_hash = await self.hashing.hash(new.password)
        elif new.hashed_password is not None:
            if not is_supported_hash(new.hashed_password):
                raise invalid_argument("COMMAND-Hnjjd", "Hashed password is in an unsupported format")
            password_hash = new.hashed_password
        return PreparedHuman(new=new, user_id=new.user_id or new_id(),
                             username=new.username or new.email, password_hash=password_hash)

    def insert_human(self, conn: Connection, principal: Principal | None, prepared: PreparedHuman,
                     *, org_id: str | None = None) -> WriteDetails:
        """Insert a prepared human inside the caller's transaction."""
        new = prepared.new
        org = self._resolve_org(conn, org_id or new.org_id, None if org_id else new.org_domain)
        if principal is not None:
            principal.require(perm.USER_WRITE, org.id)
        self._check_unique(conn, prepared.user_id, prepared.username)
        at = now_us()
        store.insert_user(conn, {
            "id": prepared.user_id, "org_id": org.id, "kind": HUMAN, "username": prepared.username,
            "state": UserState.ACTIVE, "given_name": new.profile.given_name,
            "family_name": new.profile.family_name, "nick_name": new.profile.nick_name,
            "display_name": new.profile.display_name, "preferred_language": new.profile.preferred_language,
            "gender": new.profile.gender, "email": new.email, "email_verified": new.email_verified,
            "phone": new.phone or None, "phone_verified": new.phone_verified,
            "password_hash": prepared.password_hash, "password_change_required": new.password_change_required,
            "password_changed_at": at if prepared.password_hash else None,
            "access_token_type": 0, "created_at": at, "changed_at": at, "sequence": 1,
        })
        events.append(conn, aggregate_type="user", aggregate_id=prepared.user_id, sequence=1,
                      event_type="user.human.added", creator=principal.user_id if principal else None,
                      at=at, payload={"username": prepared.username, "orgID": org.id})
        return WriteDetails(sequence=1, change_date=at, resource_owner=org.id, creation_date=at)

    async def add_human(self, principal: Principal | None, new: NewHuman) -> tuple[str, WriteDetails]:
        prepared = await self.prepare_human(new)
        details = await self.db.write(lambda conn: self.insert_human(conn, principal, prepared))
        return prepared.user_id, details

    async def add_machine(self, principal: Principal | None, new: NewMachine,
                          *, role: tuple[str, str] | None = None) -> tuple[str, WriteDetails]:
        """Create a machine (service) user; ``role`` optionally grants a (scope, role) membership."""
        if not new.name:
            raise invalid_argument("USER-2n8vs", "Machine name is required")
        _check_lengths((new.name, "machine.name", 200), (new.description, "machine.description", 500))
        user_id = new.user_id or new_id()
        username = new.username or user_id  # ZITADEL names a machine after its ID by default

        def tx(conn: Connection) -> WriteDetails:
            org = self._resolve_org(conn, new.org_id, None)
            if principal is not None:
                principal.require(perm.USER_WRITE, org.id)
            self._check_unique(conn, user_id, username)
            at = now_us()
            store.insert_user(conn, {
                "id": user_id, "org_id": org.id, "kind": MACHINE, "username": username,
                "state": UserState.ACTIVE, "machine_name": new.name,
                "machine_description": new.description or None,
                "access_token_type": int(new.access_token_type), "gender": 0,
                "created_at": at, "changed_at": at, "sequence": 1,
            })
            events.append(conn, aggregate_type="user", aggregate_id=user_id, sequence=1,
                          event_type="user.machine.added", creator=principal.user_id if principal else None,
                          at=at, payload={"username": username, "orgID": org.id})
            if role is not None:
                store.add_membership(conn, user_id=user_id, scope=role[0], role=role[1])
            return WriteDetails(sequence=1, change_date=at, resource_owner=org.id, creation_date=at)

        return user_id, await self.db.write(tx)

    def _resolve_org(self, conn: Connection, org_id: str | None, org_domain: str | None) -> Organization:
        org = None
        if org_id:
            org = store.get_org(conn, org_id)
        elif org_domain:
            org = store.get_org_by_domain(conn, org_domain)
        else:
            raise invalid_argument("USER-Ddfw2", "Organization is required")
        if org is None:
            raise not_found("COMMAND-4M9sd", "Organization not found")
        return org

    def _check_unique(self, conn: Connection, user_id: str, username: str) -> None:
        if len(user_id) > 200 or len(username) > 200:
            raise invalid_argument("USER-Mlk3s", "User ID and username must be at most 200 characters")
        if store.user_id_taken(conn, user_id):
            raise already_exists("COMMAND-k4mS9", "User already exists")
        if store.username_taken(conn, username):
            raise already_exists("COMMAND-k2unb", "Username is already taken")

    # ---- reads -------------------------------------------------------------------------------

    async def get(self, principal: Principal, user_id: str) -> User:
        user = await self.load(user_id)
        if principal.user_id != user.id:
            principal.require(perm.USER_READ, user.org_id)
        return user

    async def find_by_id(self, user_id: str) -> User | None:
        return await store.read_user(self.db, user_id)

    async def find_by_login_name(self, login_name: str) -> User | None:
        return await self.db.direct_read(lambda conn: store.find_user_by_login_name(conn, login_name))

    async def list(self, principal: Principal | None, query: UserQuery | None, page: Page,
                   sort: UserSort) -> tuple[int, list[User]]:
        """Users matching ``query`` that the caller may read (all of them for the system)."""
        filters = [sql_queries.condition(query)] if query is not None else []
        if principal is not None:
            visible = self._readable_orgs(principal, perm.USER_READ)
            if visible is not None:
                filters.append(sql_queries.visible_to(visible, principal.user_id))
        where = and_(*filters) if filters else None
        return await self.db.read(lambda conn: store.list_users(
            conn, where, offset=page.offset, limit=page.limit, order=sql_queries.order(sort, page.asc)))

    @staticmethod
    def _readable_orgs(principal: Principal, permission: str) -> frozenset[str] | None:
        """None if the caller may read every org; else the orgs it holds ``permission`` on."""
        if principal.has_permission(permission):
            return None
        return frozenset(scope for scope, _ in principal.grants
                         if scope and principal.has_permission(permission, scope))

    # ---- state changes -----------------------------------------------------------------------

    async def lock(self, principal: Principal | None, user_id: str) -> WriteDetails:
        def mutate(user: User) -> dict[str, Any]:
            if user.state not in (UserState.ACTIVE, UserState.INITIAL):
                raise failed_precondition("COMMAND-3NN8v", "User must be active or initial to be locked")
            return {"state": UserState.LOCKED}
        return await self._change(principal, user_id, perm.USER_WRITE, "user.locked", mutate,
                                  hooks=self.on_deactivated)

    async def unlock(self, principal: Principal | None, user_id: str) -> WriteDetails:
        def mutate(user: User) -> dict[str, Any]:
            if user.state != UserState.LOCKED:
                raise failed_precondition("COMMAND-4M0ds", "User is not locked")
            return {"state": UserState.ACTIVE, "failed_password_attempts": 0, "failed_otp_attempts": 0}
        return await self._change(principal, user_id, perm.USER_WRITE, "user.unlocked", mutate)

    async def deactivate(self, principal: Principal | None, user_id: str) -> WriteDetails:
        def mutate(user: User) -> dict[str, Any]:
            if user.state == UserState.INACTIVE:
                raise failed_precondition("COMMAND-5M0sf", "User is already deactivated")
            if user.state == UserState.INITIAL:
                raise failed_precondition("COMMAND-ke0fw", "User in initial state cannot be deactivated")
            return {"state": UserState.INACTIVE}
        return await self._change(principal, user_id, perm.USER_WRITE, "user.deactivated", mutate,
                                  hooks=self.on_deactivated)

    async def reactivate(self, principal: Principal | None, user_id: str) -> WriteDetails:
        def mutate(user: User) -> dict[str, Any]:
            if user.state != UserState.INACTIVE:
                raise failed_precondition("COMMAND-6M0sf", "User is not deactivated")
            return {"state": UserState.ACTIVE}
        return await self._change(principal, user_id, perm.USER_WRITE, "user.reactivated", mutate)

    async def delete(self, principal: Principal | None, user_id: str) -> WriteDetails:
        def tx(conn: Connection) -> WriteDetails:
            user = store.get_user(conn, user_id, for_update=True)
            if user is None:
                raise _user_not_found()
            if principal is not None and principal.user_id != user.id:
                principal.require(perm.USER_DELETE, user.org_id)
            at = now_us()
            creator = principal.user_id if principal else None
            for hook in self.on_deactivated:
                hook(conn, user.id, at, creator)
            store.delete_user(conn, user.id)
            return self._event(conn, user, user.sequence + 1, "user.removed", creator, at)
        return await self.db.write(tx)

    # ---- memberships -------------------------------------------------------------------------

    async def grant(self, user_id: str, role: str, org_id: str = "") -> bool:
        """Give a user a role on the instance (no ``org_id``) or on one organization (system only).

        Idempotent: returns False when the user already had that role there.
        """
        if org_id and role not in perm.ORG_ROLES:
            raise invalid_argument("USER-rol3o", f"Organization roles are {', '.join(sorted(perm.ORG_ROLES))}")
        if not org_id and role not in perm.INSTANCE_ROLES:
            raise invalid_argument("USER-rol3i", f"Instance roles are {', '.join(sorted(perm.INSTANCE_ROLES))}")

        def tx(conn: Connection) -> bool:
            user = store.get_user(conn, user_id, for_update=True)
            if user is None:
                raise _user_not_found()
            if org_id and store.get_org(conn, org_id) is None:
                raise not_found("COMMAND-4M9sd", "Organization not found")
            if (org_id, role) in store.grants_of(conn, user.id):
                return False
            store.add_membership(conn, user_id=user.id, scope=org_id, role=role)
            at = now_us()
            sequence = store.update_user(conn, user.id, {}, at=at)
            self._event(conn, user, sequence, "user.grant.added", None, at, {"role": role, "scope": org_id})
            return True

        return await self.db.write(tx)

    # ---- password ----------------------------------------------------------------------------

    async def set_password(self, principal: Principal | None, user_id: str, password: str,
                           change_required: bool, current_password: str | None = None) -> WriteDetails:
        self.policy.check(password)
        user = await self.load(user_id)
        if user.is_machine:
            raise failed_precondition("COMMAND-2M0fs", "Machine users have no password")
        is_self = principal is not None and principal.user_id == user.id
        if principal is not None and not is_self:
            principal.require(perm.USER_CREDENTIAL_WRITE, user.org_id)
        if is_self and current_password is None and not (principal and principal.has_permission(
                perm.USER_CREDENTIAL_WRITE, user.org_id)):
            raise invalid_argument("COMMAND-3M0fd", "Current password is required")
        if current_password is not None:
            stored = await self.db.read(lambda conn: store.get_password_hash(conn, user.id))
            if not (await self.hashing.verify(stored, current_password)).ok:
                raise invalid_argument("COMMAND-3M0fs", "Password is invalid")
        new_hash = await self.hashing.hash(password)
        return await self._change(
            principal, user.id, perm.USER_CREDENTIAL_WRITE, "user.human.password.changed",
            lambda _u: {"password_hash": new_hash, "password_change_required": change_required,
                        "password_changed_at": now_us(), "failed_password_attempts": 0},
            allow_self=True, hooks=self.on_password_changed,
        )

    # ---- TOTP --------------------------------------------------------------------------------

    async def register_totp(self, principal: Principal, user_id: str) -> TotpRegistration:
        secret = pyotp.random_base32()
        holder: dict[str, User] = {}

        def mutate(user: User) -> dict[str, Any]:
            if user.is_machine:
                raise failed_precondition("COMMAND-8N9ds", "Machine users cannot register TOTP")
            if user.totp_ready:
                raise already_exists("COMMAND-4M0ds", "TOTP is already set up")
            holder["user"] = user
            return {"totp_secret": self.sealer.seal(secret), "totp_ready": False, "totp_last_step": None}

        details = await self._change(principal, user_id, perm.USER_CREDENTIAL_WRITE, "user.human.otp.added",
                                     mutate, allow_self=True)
        user = holder["user"]
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.preferred_login_name, issuer_name=self.issuer_name)
        return TotpRegistration(uri=uri, secret=secret, details=details)

    async def verify_totp_registration(self, principal: Principal, user_id: str, code: str) -> WriteDetails:
        sealed, ready, _ = await self.db.read(lambda conn: store.get_totp_secret(conn, user_id))

        def mutate(user: User) -> dict[str, Any]:
            if sealed is None:
                raise failed_precondition("COMMAND-3Mif9s", "TOTP is not set up")
            if ready:
                raise already_exists("COMMAND-qx4ls", "TOTP is already verified")
            step = totp_step_matching(self.sealer.open(sealed), code, None)
            if step is None:
                raise invalid_argument("EVENT-8isk2", "Invalid code")
            return {"totp_ready": True, "totp_last_step": step}

        return await self._change(principal, user_id, perm.USER_CREDENTIAL_WRITE, "user.human.otp.verified",
                                  mutate, allow_self=True)

    async def remove_totp(self, principal: Principal, user_id: str) -> WriteDetails:
        def mutate(user: User) -> dict[str, Any]:
            if not user.totp_ready:
                raise not_found("COMMAND-Hd9sd", "TOTP is not set up")
            return {"totp_secret": None, "totp_ready": False, "totp_last_step": None}
        return await self._change(principal, user_id, perm.USER_CREDENTIAL_WRITE, "user.human.otp.removed",
                                  mutate, allow_self=True)

    # ---- personal access tokens --------------------------------------------------------------

    async def add_pat(self, principal: Principal | None, user_id: str, expires_at: int | None) -> NewPat:
        token = tokens.mint_pat()
        token_id = new_id()

        def tx(conn: Connection) -> NewPat:
            user = store.get_user(conn, user_id, for_update=True)
            if user is None:
                raise _user_not_found()
            if principal is not None:
                principal.require(perm.USER_CREDENTIAL_WRITE, user.org_id)
            if not user.is_machine:
                raise failed_precondition("COMMAND-Dfr3d", "Only machine users can have personal access tokens")
            at = now_us()
            if expires_at is not None and expires_at <= at:
                raise invalid_argument("COMMAND-dv3t5", "Expiration date must be in the future")
            store.insert_pat(conn, pat_id=token_id, user_id=user.id, token_hash=tokens.hash_token(token),
                             expires_at=expires_at, at=at)
            sequence = store.update_user(conn, user.id, {}, at=at)
            self._event(conn, user, sequence, "user.personal.access.token.added",
                        principal.user_id if principal else None, at, {"tokenID": token_id})
            return NewPat(token_id=token_id, token=token, created_at=at)

        return await self.db.write(tx)

    async def remove_pat(self, principal: Principal | None, user_id: str, token_id: str) -> WriteDetails:
        def tx(conn: Connection) -> WriteDetails:
            user = store.get_user(conn, user_id, for_update=True)
            if user is None:
                raise _user_not_found()
            if principal is not None:
                principal.require(perm.USER_CREDENTIAL_WRITE, user.org_id)
            if not store.delete_pat(conn, user_id=user.id, pat_id=token_id):
                raise not_found("COMMAND-S3r9s", "Personal access token not found")
            at = now_us()
            sequence = store.update_user(conn, user.id, {}, at=at)
            return self._event(conn, user, sequence, "user.personal.access.token.removed",
                               principal.user_id if principal else None, at, {"tokenID": token_id})
        return await self.db.write(tx)

    async def list_pats(self, principal: Principal | None, user_ids: tuple[str, ...] | None,
                        token_ids: tuple[str, ...] | None, org_id: str | None,
                        page: Page) -> tuple[int, builtins.list[PatInfo]]:
        visible = self._readable_orgs(principal, perm.USER_READ) if principal is not None else None
        where = store.pat_conditions(visible_orgs=visible, user_ids=user_ids, token_ids=token_ids, org_id=org_id)
        total, rows = await self.db.read(lambda conn: store.list_pats(
            conn, where, offset=page.offset, limit=page.limit, asc=page.asc))
        return total, [PatInfo(id=r.id, user_id=r.user_id, org_id=r.org_id, created_at=r.created_at,
                               expires_at=r.expires_at) for r in rows]


def totp_step_matching(secret: str, code: str, last_step: int | None, *, at: float | None = None) -> int | None:
    """The time step (±1 for clock skew) whose code equals ``code``, if not used before."""
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if at is None else at
    current = int(now // totp.interval)
    found = None
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and (last_step is None or step > last_step):
            found = step
    return found
