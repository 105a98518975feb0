"""Search filters for ListUsers, independent of any wire format."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class TextMethod(enum.IntEnum):
    """Numbers match zitadel.object.v2.TextQueryMethod."""

    EQUALS = 0
    EQUALS_IGNORE_CASE = 1
    STARTS_WITH = 2
    STARTS_WITH_IGNORE_CASE = 3
    CONTAINS = 4
    CONTAINS_IGNORE_CASE = 5
    ENDS_WITH = 6
    ENDS_WITH_IGNORE_CASE = 7


class UserField(enum.Enum):
    USERNAME = "username"
    EMAIL = "email"
    LOGIN_NAME = "login_name"
    FIRST_NAME = "given_name"
    LAST_NAME = "family_name"
    NICK_NAME = "nick_name"
    DISPLAY_NAME = "display_name"
    PHONE = "phone"


@dataclass(frozen=True)
class TextQuery:
    field: UserField
    value: str
    method: TextMethod


@dataclass(frozen=True)
class IdsQuery:
    ids: tuple[str, ...]


@dataclass(frozen=True)
class OrgQuery:
    org_id: str


@dataclass(frozen=True)
class KindQuery:
    kind: str  # "human" or "machine"


@dataclass(frozen=True)
class StateQuery:
    state: int


@dataclass(frozen=True)
class AndQuery:
    queries: tuple[UserQuery, ...]


@dataclass(frozen=True)
class OrQuery:
    queries: tuple[UserQuery, ...]


@dataclass(frozen=True)
class NotQuery:
    query: UserQuery


UserQuery = TextQuery | IdsQuery | OrgQuery | KindQuery | StateQuery | AndQuery | OrQuery | NotQuery


class UserSort(enum.Enum):
    """Sorting columns of ListUsers; numbers match zitadel.user.v2.UserFieldName."""

    UNSPECIFIED = 0
    USER_NAME = 1
    FIRST_NAME = 2
    LAST_NAME = 3
    NICK_NAME = 4
    DISPLAY_NAME = 5
    EMAIL = 6
    STATE = 7
    TYPE = 8
    CREATION_DATE = 9


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int
    asc: bool


@dataclass(frozen=True)
class OrgFilter:
    """One ListOrganizations filter; ``field`` is "name", "domain", "id" or "state"."""

    field: str
    value: str
    method: TextMethod = TextMethod.EQUALS
