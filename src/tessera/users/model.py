"""The user aggregate as the rest of Tessera sees it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class UserState(enum.IntEnum):
    """Numbers match zitadel.user.v2.UserState."""

    UNSPECIFIED = 0
    ACTIVE = 1
    INACTIVE = 2
    DELETED = 3
    LOCKED = 4
    INITIAL = 5


class AccessTokenType(enum.IntEnum):
    BEARER = 0
    JWT = 1


HUMAN = "human"
MACHINE = "machine"


@dataclass(frozen=True)
class User:
    id: str
    org_id: str
    kind: str
    username: str
    state: UserState
    org_domains: tuple[str, ...]
    primary_domain: str
    created_at: int
    changed_at: int
    sequence: int
    given_name: str = ""
    family_name: str = ""
    nick_name: str = ""
    display_name: str = ""
    preferred_language: str = ""
    gender: int = 0
    email: str = ""
    email_verified: bool = False
    phone: str = ""
    phone_verified: bool = False
    has_password: bool = False
    password_change_required: bool = False
    password_changed_at: int | None = None
    totp_ready: bool = False
    failed_password_attempts: int = 0
    failed_otp_attempts: int = 0
    machine_name: str = ""
    machine_description: str = ""
    access_token_type: AccessTokenType = AccessTokenType.BEARER
    has_secret: bool = False  # a machine user's client secret is set

    @property
    def is_machine(self) -> bool:
        return self.kind == MACHINE

    @property
    def login_names(self) -> list[str]:
        return [f"{self.username}@{domain}" for domain in self.org_domains]

    @property
    def preferred_login_name(self) -> str:
        return f"{self.username}@{self.primary_domain}" if self.primary_domain else self.username

    @property
    def effective_display_name(self) -> str:
        if self.is_machine:
            return self.machine_name or self.username
        if self.display_name:
            return self.display_name
        full = f"{self.given_name} {self.family_name}".strip()
        return full or self.username

    @property
    def can_log_in(self) -> bool:
        return self.state in (UserState.ACTIVE, UserState.INITIAL)


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    state: int
    primary_domain: str
    domains: tuple[str, ...]
    created_at: int
    changed_at: int
    sequence: int


@dataclass(frozen=True)
class WriteDetails:
    """What a write returns on the wire: the aggregate's new sequence, time and owner."""

    sequence: int
    change_date: int
    resource_owner: str
    creation_date: int | None = None
