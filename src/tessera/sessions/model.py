"""The session aggregate: who was checked, how, when, and what the session carries."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


@dataclass(frozen=True)
class UserAgent:
    fingerprint_id: str = ""
    ip: str = ""
    description: str = ""
    header: dict[str, list[str]] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.fingerprint_id or self.ip or self.description or self.header)


@dataclass(frozen=True)
class Factors:
    """Check times in microseconds; None when the factor was never checked."""

    user_checked_at: int | None = None
    password_checked_at: int | None = None
    totp_checked_at: int | None = None
    otp_sms_checked_at: int | None = None
    otp_email_checked_at: int | None = None
    intent_checked_at: int | None = None
    webauthn_checked_at: int | None = None
    webauthn_user_verified: bool = False

    def authentication_factors(self) -> int:
        """How many factors beyond the user check are verified."""
        return sum(t is not None for t in (
            self.password_checked_at, self.totp_checked_at, self.otp_sms_checked_at,
            self.otp_email_checked_at, self.intent_checked_at, self.webauthn_checked_at))

    def is_multi_factor(self) -> bool:
        """A passkey with user verification alone, or at least two factors."""
        if self.webauthn_checked_at is not None and self.webauthn_user_verified:
            return True
        return self.authentication_factors() >= 2


@dataclass(frozen=True)
class Session:
    id: str
    creator_id: str
    user_id: str | None
    user_org_id: str | None
    factors: Factors
    metadata: dict[str, bytes]
    user_agent: UserAgent | None
    expires_at: int | None
    created_at: int
    changed_at: int
    sequence: int
    token_hash: bytes
    # Joined live from the user tables when read (empty if the user is gone).
    user_login_name: str = ""
    user_display_name: str = ""
    # When the session ended; only the delete path ever sees such a tombstone.
    terminated_at: int | None = None

    def is_expired(self, now: int) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class TimestampMethod(enum.IntEnum):
    """Numbers match zitadel.v1.TimestampQueryMethod."""

    EQUALS = 0
    GREATER = 1
    GREATER_OR_EQUALS = 2
    LESS = 3
    LESS_OR_EQUALS = 4


@dataclass(frozen=True)
class IdsFilter:
    ids: tuple[str, ...]


@dataclass(frozen=True)
class UserIdFilter:
    user_id: str


@dataclass(frozen=True)
class CreatorFilter:
    creator_id: str


@dataclass(frozen=True)
class FingerprintFilter:
    fingerprint_id: str


@dataclass(frozen=True)
class CreationDateFilter:
    at: int
    method: TimestampMethod


@dataclass(frozen=True)
class ExpirationDateFilter:
    at: int
    method: TimestampMethod


SessionFilter = IdsFilter | UserIdFilter | CreatorFilter | FingerprintFilter | CreationDateFilter | ExpirationDateFilter


@dataclass(frozen=True)
class Visibility:
    """Which sessions a caller may read: all, or those it created, is the user of, or whose user is in ``orgs``."""

    everything: bool
    caller_id: str = ""
    orgs: frozenset[str] = frozenset()
