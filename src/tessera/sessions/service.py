"""Session commands and queries.

A write runs in a fixed order whatever the request's field order: resolve the checked user,
run the checks (user, password, TOTP), then metadata, lifetime and a new token, and commit the
new state with one event in one transaction. A failing check writes no session change (the
user-side failure counters are still recorded by the credential checker).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection

from ..auth import permissions as perm
from ..auth.principal import Principal
from ..clock import now_us
from ..config import Settings
from ..crypto import tokens
from ..errors import (
    Code,
    TesseraError,
    failed_precondition,
    invalid_argument,
    not_found,
    permission_denied,
)
from ..ids import new_id
from ..store import sessions as store
from ..store import users as user_store
from ..store.db import Database
from ..store.direct import Driver, Params, Statement
from ..users.credentials import CredentialChecker
from ..users.model import User
from ..users.service import UserService
from .model import Factors, Session, SessionFilter, UserAgent, Visibility

MAX_ID_LENGTH = 200


@dataclass(frozen=True)
class Checks:
    user_id: str | None = None
    login_name: str | None = None
    password: str | None = None
    totp: str | None = None
    unsupported: tuple[str, ...] = ()  # checks Tessera does not offer yet (webAuthN, OTP, intents…)

    @property
    def has_user(self) -> bool:
        return self.user_id is not None or self.login_name is not None

    def is_empty(self) -> bool:
        return not (self.has_user or self.password is not None or self.totp is not None or self.unsupported)


@dataclass(frozen=True)
class SessionChange:
    checks: Checks = field(default_factory=Checks)
    metadata: dict[str, bytes] = field(default_factory=dict)
    lifetime_us: int | None = None  # None or 0: unchanged / never expires
    user_agent: UserAgent | None = None  # only on creation


@dataclass(frozen=True)
class WriteResult:
    session_id: str
    sequence: int
    change_date: int
    token: str  # empty when nothing changed


def _not_existing() -> TesseraError:
    return not_found("QUERY-SFeaa", "Session does not exist")


def _is_valid_id(value: str) -> bool:
    return bool(value) and len(value) <= MAX_ID_LENGTH


def check_id(value: str, what: str) -> str:
    if not _is_valid_id(value):
        raise invalid_argument("SESSION-idLen", f"{what} must be 1 to {MAX_ID_LENGTH} characters")
    return value


def canonical_ip(value: str) -> str:
    """An IP address in canonical form; anything unparseable is dropped, as ZITADEL does."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


class SessionService:
    def __init__(self, db: Database, users: UserService, credentials: CredentialChecker, settings: Settings,
                 instance_id: str) -> None:
        self.db = db
        self.users = users
        self.credentials = credentials
        self.settings = settings
        self.instance_id = instance_id
        users.on_deactivated.append(self._terminate_user_sessions)
        users.on_password_changed.append(self._clear_password_factor)

    # ---- validation ------------------------------------------------------------------------------

    def _validate(self, change: SessionChange) -> None:
        s = self.settings
        if change.lifetime_us is not None and change.lifetime_us < 0:
            raise invalid_argument("COMMAND-asEG4", "Lifetime must be positive")
        if len(change.metadata) > s.max_metadata_keys:
            raise invalid_argument("SESSION-md001", f"At most {s.max_metadata_keys} metadata keys are allowed")
        for key, value in change.metadata.items():
            if not key or len(key) > s.max_metadata_key_length:
                raise invalid_argument("SESSION-md002",
                                       f"Metadata keys must be 1 to {s.max_metadata_key_length} characters")
            if len(value) > s.max_metadata_value_bytes:
                raise invalid_argument("SESSION-md003",
                                       f"Metadata values must be at most {s.max_metadata_value_bytes} bytes")
        c = change.checks
        for given, what in ((c.user_id, "checks.user.userId"), (c.login_name, "checks.user.loginName"),
                            (c.password, "checks.password.password")):
            if given is not None:
                check_id(given, what)
        agent = change.user_agent
        if agent is not None:
            for part, what in ((agent.fingerprint_id, "userAgent.fingerprintId"), (agent.ip, "userAgent.ip"),
                               (agent.description, "userAgent.description")):
                if len(part) > MAX_ID_LENGTH:
                    raise invalid_argument("SESSION-ua001", f"{what} must be at most {MAX_ID_LENGTH} characters")
        if c.totp is not None and len(c.totp) != 6:
            raise invalid_argument("SESSION-totp6", "checks.totp.code must be 6 characters")
        if c.unsupported:
            raise TesseraError(Code.UNIMPLEMENTED, "SESSION-unimp",
                               f"Check {c.unsupported[0]} is not supported by this server")

    async def _resolve_user(self, checks: Checks) -> User | None:
        if not checks.has_user:
            return None
        if checks.user_id is not None:
            user = await self.users.find_by_id(checks.user_id)
        else:
            user = await self.users.find_by_login_name(checks.login_name or "")
        if user is None:
            raise not_found("QUERY-Dfbg2", "User could not be found")
        if not user.can_log_in:
            raise failed_precondition("SESSION-Gj4ko", "User is not active")
        return user

    async def _run_checks(self, checks: Checks, user: User | None, factors: Factors) -> Factors:
        """Run the checks in the fixed order; the first failure aborts the request."""
        if user is not None and checks.has_user:
            factors = replace(factors, user_checked_at=now_us())
        if checks.password is not None:
            if user is None:
                raise failed_precondition("COMMAND-Sfw3f", "A user must be checked before the password")
            factors = replace(factors, password_checked_at=await self.credentials.check_password(
                user.id, checks.password))
        if checks.totp is not None:
            if user is None:
                raise invalid_argument("COMMAND-8N9ds", "A user must be checked before TOTP")
            factors = replace(factors, totp_checked_at=await self.credentials.check_totp(user, checks.totp))
        return factors

    # ---- commands --------------------------------------------------------------------------------

    async def create(self, principal: Principal, change: SessionChange) -> WriteResult:
        # Tessera checks permission before looking the user up, so that callers without
        # session.write cannot probe which login names exist.
        principal.require(perm.SESSION_WRITE)
        self._validate(change)
        checks = change.checks
        if checks.user_id is not None and checks.password is None and checks.totp is None:
            created = await self._create_for_user_id(principal, change, checks.user_id)
            if created is not None:
                return created
            # The user is missing or may not log in: the general path says which.
        user = await self._resolve_user(checks)
        factors = await self._run_checks(checks, user, Factors())
        session, token = self._new_session(principal, change, user.id if user else None,
                                           user.org_id if user else None, factors)
        payload = _event_payload(change, user.id if user else None, token_rotated=True)
        await self.db.direct_write(lambda conn: store.insert_session(conn, session, event_payload=payload),
                                   one_statement=True)
        return WriteResult(session.id, 1, session.created_at, token)

    async def _create_for_user_id(self, principal: Principal, change: SessionChange,
                                  user_id: str) -> WriteResult | None:
        """``create`` when the only check is the user, by ID (the common case): the user's lookup is part
        of the insert, one statement in all. None, and nothing written, if the user may not log in."""
        session, token = self._new_session(principal, change, user_id, None, Factors(user_checked_at=now_us()))
        payload = _event_payload(change, user_id, token_rotated=True)
        if not await self.db.direct_write(
                lambda conn: store.insert_session_for_user(conn, session, event_payload=payload), one_statement=True):
            return None
        return WriteResult(session.id, 1, session.created_at, token)

    def _new_session(self, principal: Principal, change: SessionChange, user_id: str | None,
                     user_org_id: str | None, factors: Factors) -> tuple[Session, str]:
        """A session as CreateSession makes it, with its token."""
        at = now_us()
        session_id = new_id()
        token = tokens.mint_session_token(session_id)
        session = Session(
            id=session_id, creator_id=principal.user_id, user_id=user_id, user_org_id=user_org_id, factors=factors,
            metadata={k: v for k, v in change.metadata.items() if v}, user_agent=_clean_agent(change.user_agent),
            expires_at=at + change.lifetime_us if change.lifetime_us else None, created_at=at, changed_at=at,
            sequence=1, token_hash=tokens.hash_token(token))
        return session, token

    async def set(self, principal: Principal, session_id: str, change: SessionChange,
                  read: list[Any] | None = None) -> WriteResult:
        """``read``: the rows of ``first_read``'s read, if already made."""
        check_id(session_id, "session_id")
        self._validate(change)
        current = self._require_writable(principal, await self._read(session_id, read))
        if change.checks.is_empty():  # metadata or lifetime only
            return await self._commit_change(principal, current, change, None, Factors())
        user = await self._resolve_user(change.checks)
        if user is not None and current.user_id is not None and user.id != current.user_id:
            raise TesseraError(Code.INVALID_ARGUMENT, "", "user change not possible")
        if user is None and current.user_id is not None and (change.checks.password is not None
                                                             or change.checks.totp is not None):
            user = await self.users.find_by_id(current.user_id)
            if user is None:
                raise failed_precondition("COMMAND-Df4b3", "The session's user no longer exists")
        checked = await self._run_checks(change.checks, user, Factors())
        return await self._commit_change(principal, current, change, user, checked)

    def _require_writable(self, principal: Principal, session: Session | None) -> Session:
        if session is None:
            # Only callers who may write some session learn whether an ID exists.
            if not any(principal.has_permission(perm.SESSION_WRITE, scope) for scope, _ in principal.grants):
                principal.require(perm.SESSION_WRITE)
            raise _not_existing()
        self._require_write(principal, session)
        if session.is_expired(now_us()):
            raise failed_precondition("COMMAND-Hkl3d", "Session has expired")
        return session

    async def _commit_change(self, principal: Principal, current: Session, change: SessionChange,
                             user: User | None, checked: Factors) -> WriteResult:
        """Write ``change`` over the session as read (``current``) in one statement if no other write came
        in between, the usual case; otherwise once more over the stored session, under its lock.

        Holding the lock from the read on would keep it across every round trip of the request
        (on PostgreSQL each one a wait on the event loop), and concurrent writers would queue that long.
        """
        written = await self.db.direct_write(
            lambda conn: self._write_change(conn, principal, current, change, user, checked, seen=current.sequence),
            one_statement=True)
        if written is not None:
            return written
        locked = await self.db.direct_write(
            lambda conn: self._write_change(conn, principal, store.lock(conn, current.id), change, user, checked))
        assert locked is not None  # under the lock nothing can come first
        return locked

    def _write_change(self, conn: Driver, principal: Principal, session: Session | None, change: SessionChange,
                      user: User | None, checked: Factors, *, seen: int | None = None) -> WriteResult | None:
        """Apply ``change`` (its checks already run) to ``session``, with a new token. ``session`` is either
        locked, or was read at sequence ``seen`` and is written only if still there (None if not)."""
        session = self._require_writable(principal, session)
        at = now_us()
        if user is not None and session.user_id is not None and user.id != session.user_id:
            raise TesseraError(Code.INVALID_ARGUMENT, "", "user change not possible")
        updated = _apply(session, change, user, checked, at)
        if updated is None:
            return WriteResult(session.id, session.sequence, session.changed_at, "")
        if len(updated.metadata) > self.settings.max_metadata_keys:
            # The limit bounds the session, not just one request, or repeated updates could grow it forever.
            raise invalid_argument("SESSION-md001",
                                   f"At most {self.settings.max_metadata_keys} metadata keys are allowed")
        token = tokens.mint_session_token(session.id)
        updated = replace(updated, token_hash=tokens.hash_token(token))
        payload = _event_payload(change, user.id if user else None, token_rotated=True)
        if seen is None:
            store.update_session(conn, updated, creator=principal.user_id, event_payload=payload)
        elif not store.update_session_if_unchanged(conn, updated, seen_sequence=seen, creator=principal.user_id,
                                                   event_payload=payload):
            return None
        return WriteResult(session.id, updated.sequence, at, token)

    async def delete(self, principal: Principal, session_id: str, token: str | None) -> WriteResult:
        check_id(session_id, "session_id")
        if token is not None:
            check_id(token, "session_token")

        def tx(conn: Connection) -> WriteResult:
            # An ended session's tombstone still holds its last token's hash: deleting again with that
            # token succeeds (spec: the last token stays valid for the idempotent delete).
            session = store.lock_including_ended(conn, session_id)
            at = now_us()
            if token is not None:
                if session is None or not tokens.same_hash(token, session.token_hash):
                    raise permission_denied("COMMAND-sGr42", "Session token is invalid")
            elif session is None:
                return _delete_again(conn, principal, session_id, at)
            elif session.user_id != principal.user_id:
                principal.require(perm.SESSION_DELETE, session.user_org_id)
            if session.terminated_at is not None:  # already ended: write nothing, answer as the first time
                return WriteResult(session_id, session.sequence, session.changed_at, "")
            sequence = store.terminate(conn, session, creator=principal.user_id, at=at, reason="deleted")
            return WriteResult(session_id, sequence, at, "")

        return await self.db.write(tx)

    # ---- queries ---------------------------------------------------------------------------------

    def first_read(self, session_id: str) -> tuple[Statement, Params] | None:
        """The read ``get`` and ``set`` start with, for the authenticator to run beside its own
        (api/rpc.py's ``rpc_reading``); None for an ID that they refuse before reading."""
        return store.read_by_id(session_id) if _is_valid_id(session_id) else None

    async def _read(self, session_id: str, read: list[Any] | None) -> Session | None:
        """The live session, from ``first_read``'s rows when the authenticator already read them."""
        return store.session_of(read) if read is not None else await store.read(self.db, session_id)

    async def get(self, principal: Principal, session_id: str, token: str | None,
                  read: list[Any] | None = None) -> Session:
        """``read``: the rows of ``first_read``'s read, if already made."""
        check_id(session_id, "session_id")
        if token is not None:
            check_id(token, "session_token")
        session = await self._read(session_id, read)
        if session is None:
            raise _not_existing()
        if token is not None:
            # The token alone decides, even for callers who could read the session otherwise.
            if not tokens.same_hash(token, session.token_hash):
                raise permission_denied("QUERY-dsfr3", "Permission denied")
            return session
        if not self._may_read(principal, session):
            raise permission_denied("AUTH-AWfge", "No matching permissions found")
        return session

    async def list(self, principal: Principal, filters: list[SessionFilter], *, offset: int, limit: int,
                   sort_by_creation: bool, asc: bool) -> tuple[int, list[Session]]:
        visibility = self.visibility(principal)
        return await self.db.read(lambda conn: store.search(
            conn, filters, visibility, offset=offset, limit=limit, sort_by_creation=sort_by_creation, asc=asc))

    async def verify_token(self, token: str) -> Session | None:
        """The session a token belongs to, if the token is its current one."""
        session_id = tokens.session_id_of(token)
        if session_id is None:
            return None
        session = await store.read(self.db, session_id)
        if session is None or not tokens.same_hash(token, session.token_hash):
            return None
        return session

    async def prune_expired(self, before: int, *, batch: int = 1000) -> int:
        """Delete sessions that expired, and tombstones of sessions that ended, before ``before``.

        Works in small batches, one transaction each; returns how many were deleted.
        """
        total = 0
        while True:
            deleted = await self.db.write(
                lambda conn: store.delete_expired(conn, before=before, limit=batch, at=now_us()))
            total += deleted
            if deleted < batch:
                return total

    # ---- permissions -----------------------------------------------------------------------------

    @staticmethod
    def visibility(principal: Principal) -> Visibility:
        if principal.has_permission(perm.SESSION_READ):
            return Visibility(everything=True)
        orgs = frozenset(scope for scope, _ in principal.grants
                         if scope and principal.has_permission(perm.SESSION_READ, scope))
        return Visibility(everything=False, caller_id=principal.user_id, orgs=orgs)

    @staticmethod
    def _may_read(principal: Principal, session: Session) -> bool:
        if principal.user_id in (session.creator_id, session.user_id):
            return True
        return principal.has_permission(perm.SESSION_READ, session.user_org_id)

    @staticmethod
    def _require_write(principal: Principal, session: Session) -> None:
        principal.require(perm.SESSION_WRITE, session.user_org_id)

    # ---- reactions to user changes -----------------------------------------------------------------

    @staticmethod
    def _terminate_user_sessions(conn: Connection, user_id: str, at: int, creator: str | None) -> None:
        store.terminate_user_sessions(conn, user_id, creator=creator, at=at, reason="user deactivated")

    @staticmethod
    def _clear_password_factor(conn: Connection, user_id: str, at: int, creator: str | None) -> None:
        store.clear_password_factor(conn, user_id, changed_before=at, creator=creator)


def _delete_again(conn: Connection, principal: Principal, session_id: str, at: int) -> WriteResult:
    """Deleting is idempotent, also once an ended session's tombstone was pruned: the answer holds the
    details of its terminating event, from the audit log.

    The same callers as before may do so: its user, or a holder of session.delete on that user's
    organization (the instance for sessions without a user, pruned expired sessions, or IDs that never
    existed). A session token cannot be verified any more here, since only the tombstone kept its hash.
    """
    last = store.termination_event(conn, session_id)
    if last is None:
        principal.require(perm.SESSION_DELETE)
        return WriteResult(session_id, 0, at, "")
    user_id = store.checked_user_in_history(conn, session_id)
    if user_id is None or user_id != principal.user_id:
        user = user_store.get_user(conn, user_id) if user_id else None
        principal.require(perm.SESSION_DELETE, user.org_id if user else None)
    return WriteResult(session_id, last[0], last[1], "")


def _clean_agent(agent: UserAgent | None) -> UserAgent | None:
    if agent is None:
        return None
    cleaned = replace(agent, ip=canonical_ip(agent.ip) if agent.ip else "")
    return None if cleaned.is_empty() else cleaned


def _apply(session: Session, change: SessionChange, user: User | None, checked: Factors,
           at: int) -> Session | None:
    """The session after ``change``, or None when nothing changes."""
    changed = False
    factors = session.factors
    updates: dict[str, Any] = {}
    for name in ("user_checked_at", "password_checked_at", "totp_checked_at"):
        value = getattr(checked, name)
        if value is not None:
            updates[name] = value
    if updates:
        factors = replace(factors, **updates)
        changed = True
    metadata = dict(session.metadata)
    for key, value in change.metadata.items():
        if not value:
            if key in metadata:
                del metadata[key]
                changed = True
        elif metadata.get(key) != value:
            metadata[key] = value
            changed = True
    expires_at = session.expires_at
    if change.lifetime_us:
        expires_at = at + change.lifetime_us
        changed = True
    if not changed:
        return None
    user_id, user_org_id = session.user_id, session.user_org_id
    if user is not None and session.user_id is None and checked.user_checked_at is not None:
        user_id, user_org_id = user.id, user.org_id
    return replace(session, user_id=user_id, user_org_id=user_org_id, factors=factors, metadata=metadata,
                   expires_at=expires_at, changed_at=at, sequence=session.sequence + 1)


def _event_payload(change: SessionChange, user_id: str | None, *, token_rotated: bool) -> dict[str, Any]:
    """What changed, for the audit log: names of checks and keys, never their values."""
    c = change.checks
    checks = [name for name, present in (("user", c.has_user), ("password", c.password is not None),
                                         ("totp", c.totp is not None)) if present]
    payload: dict[str, Any] = {}
    if checks:
        payload["checks"] = checks
    if user_id is not None and c.has_user:
        payload["userID"] = user_id
    if change.metadata:
        payload["metadataKeys"] = sorted(change.metadata)
    if change.lifetime_us:
        payload["lifetimeSeconds"] = change.lifetime_us // 1_000_000
    if token_rotated:
        payload["tokenRotated"] = True
    return payload
