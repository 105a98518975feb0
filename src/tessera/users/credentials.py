"""Checking a user's password and TOTP code, with lockout.

Counting is atomic: an attempt reserves its place in the failed-attempt counter, with one
conditional update, *before* the (slow) password hash is verified, so that N parallel wrong
passwords against a limit of L never evaluate more than L of them. A success gives the place back
(resets the count).
The attempt that reaches the limit locks the user and still answers ``invalid_argument``; later
attempts answer ``failed_precondition``.
"""

from __future__ import annotations

from sqlalchemy import Connection

from ..clock import now_us
from ..crypto.passwords import PasswordHashing
from ..crypto.sealing import Sealer
from ..errors import Code, TesseraError, failed_precondition, invalid_argument, not_found
from ..store import events, policies
from ..store import users as store
from ..store.db import Database
from ..store.direct import Conn
from .model import User, UserState
from .service import UserService, totp_step_matching


def _wrong_password(attempts: int) -> TesseraError:
    return TesseraError(Code.INVALID_ARGUMENT, "COMMAND-3M0fs", "Password is invalid", failed_attempts=attempts)


class CredentialChecker:
    def __init__(self, db: Database, hashing: PasswordHashing, sealer: Sealer, users: UserService) -> None:
        self.db = db
        self.hashing = hashing
        self.sealer = sealer
        self.users = users

    async def check_password(self, user_id: str, password: str) -> int:
        """Verify ``password``; returns the check time in microseconds or raises."""
        reserved = await self.db.direct_write(lambda conn: policies.reserve_password_attempt(conn, user_id),
                                              one_statement=True)
        if reserved is None:
            raise await self.db.direct_read(lambda conn: self._password_refusal(conn, user_id))
        password_hash, attempts = reserved
        result = await self.hashing.verify(password_hash, password)
        if result.ok:
            checked_at = now_us()
            new_hash = result.new_hash
            if new_hash:  # rare: an imported bcrypt hash or an outdated cost, upgraded now
                await self.db.write(lambda conn: self._password_succeeded(conn, user_id, new_hash))
            elif not await self.db.direct_write(
                    lambda conn: store.record_password_success(conn, user_id, at=now_us()), one_statement=True):
                raise await self.db.direct_read(lambda conn: self._locked_meanwhile(conn, user_id))
            return checked_at
        await self.db.write(lambda conn: self._password_failed(conn, user_id, attempts))
        raise _wrong_password(attempts)

    @staticmethod
    def _password_refusal(conn: Conn, user_id: str) -> TesseraError:
        """Why ``reserve_password_attempt`` refused: checked in the order the user would want to hear it."""
        user = store.get_user(conn, user_id)
        if user is None:
            return not_found("COMMAND-3n8fs", "User could not be found")
        if user.state == UserState.LOCKED:
            return failed_precondition("COMMAND-JLK35", "User is locked")
        if not user.can_log_in:
            return failed_precondition("COMMAND-3M9sd", "User is not active")
        if not store.get_password_hash(conn, user_id):
            return failed_precondition("COMMAND-3nJ4t", "User has no password set")
        return failed_precondition("COMMAND-JLK35", "User is locked")  # the lockout limit is reached

    @staticmethod
    def _locked_meanwhile(conn: Conn, user_id: str) -> TesseraError:
        """A correct password, but the user was locked or deleted while it was being verified."""
        if store.get_user(conn, user_id) is None:
            return not_found("COMMAND-3n8fs", "User could not be found")
        return failed_precondition("COMMAND-SFA3t", "User is locked")

    def _password_succeeded(self, conn: Connection, user_id: str, new_hash: str) -> None:
        """A correct password whose hash is upgraded (``record_password_success`` with the new hash)."""
        user = store.get_user(conn, user_id, for_update=True)
        if user is None:
            raise not_found("COMMAND-3n8fs", "User could not be found")
        if user.state == UserState.LOCKED:
            raise failed_precondition("COMMAND-SFA3t", "User is locked")
        at = now_us()
        sequence = store.update_user(conn, user_id, {"failed_password_attempts": 0, "password_hash": new_hash}, at=at)
        events.append(conn, aggregate_type="user", aggregate_id=user_id, sequence=sequence,
                      event_type="user.human.password.check.succeeded", creator=None, at=at)

    def _password_failed(self, conn: Connection, user_id: str, attempts: int) -> None:
        user = store.get_user(conn, user_id, for_update=True)
        if user is None:
            return
        at = now_us()
        limit = policies.policy_for(conn, user.org_id).max_password_attempts
        lock = limit > 0 and attempts >= limit and user.can_log_in
        values: dict[str, object] = {"state": UserState.LOCKED} if lock else {}
        sequence = store.update_user(conn, user_id, values, at=at)
        events.append(conn, aggregate_type="user", aggregate_id=user_id, sequence=sequence,
                      event_type="user.human.password.check.failed", creator=None, at=at,
                      payload={"attempts": attempts})
        if lock:
            events.append(conn, aggregate_type="user", aggregate_id=user_id, sequence=sequence + 1,
                          event_type="user.locked", creator=None, at=at, payload={"reason": "lockout policy"})
            store.update_user(conn, user_id, {}, at=at)
            for hook in self.users.on_deactivated:
                hook(conn, user_id, at, None)

    async def check_totp(self, user: User, code: str) -> int:
        """Verify a TOTP code (once only); returns the check time or raises."""
        outcome = await self.db.write(lambda conn: self._check_totp(conn, user.id, code))
        if isinstance(outcome, TesseraError):
            raise outcome  # raised after commit, so the failed attempt stays counted
        return outcome

    def _check_totp(self, conn: Connection, user_id: str, code: str) -> int | TesseraError:
        user = store.get_user(conn, user_id, for_update=True)
        if user is None:
            raise not_found("COMMAND-3n8fs", "User could not be found")
        sealed, ready, last_step = store.get_totp_secret(conn, user_id)
        if not sealed or not ready:
            raise failed_precondition("COMMAND-3Mif9s", "TOTP is not set up")
        if user.state == UserState.LOCKED:
            raise failed_precondition("COMMAND-SF3fg", "User is locked")
        secret = self.sealer.open(sealed)
        step = totp_step_matching(secret, code, last_step)
        at = now_us()
        if step is not None:
            sequence = store.update_user(conn, user_id, {"totp_last_step": step, "failed_otp_attempts": 0}, at=at)
            events.append(conn, aggregate_type="user", aggregate_id=user_id, sequence=sequence,
                          event_type="user.human.otp.check.succeeded", creator=None, at=at)
            return at
        if totp_step_matching(secret, code, None) is not None:
            raise invalid_argument("TOTP-Auw0a", "Code was already used")
        return self._totp_failed(conn, user, at)

    def _totp_failed(self, conn: Connection, user: User, at: int) -> TesseraError:
        policy = policies.policy_for(conn, user.org_id)
        attempts = user.failed_otp_attempts + 1
        lock = policy.max_otp_attempts > 0 and attempts >= policy.max_otp_attempts
        values: dict[str, object] = {"failed_otp_attempts": attempts}
        if lock:
            values["state"] = UserState.LOCKED
        sequence = store.update_user(conn, user.id, values, at=at)
        events.append(conn, aggregate_type="user", aggregate_id=user.id, sequence=sequence,
                      event_type="user.locked" if lock else "user.human.otp.check.failed", creator=None, at=at,
                      payload={"attempts": attempts})
        if lock:
            for hook in self.users.on_deactivated:
                hook(conn, user.id, at, None)
        return invalid_argument("EVENT-8isk2", "Invalid code")
