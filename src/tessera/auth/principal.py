"""Who is calling: the authenticated user and what their memberships allow."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import Code, TesseraError, unauthenticated
from .permissions import INSTANCE_SCOPE, ROLE_PERMISSIONS

if TYPE_CHECKING:
    from ..users.model import User


@dataclass(frozen=True)
class Principal:
    user_id: str
    org_id: str
    is_machine: bool
    method: str  # "pat", "session", "access_token"
    grants: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (scope, role)
    session_id: str | None = None
    # The user as authentication read it, when it did (session tokens): read in the same request, so
    # ``/users/me`` answers from it instead of reading the user again.
    user: User | None = field(default=None, compare=False, repr=False)

    def has_permission(self, permission: str, org_id: str | None = None) -> bool:
        """True when a role grants ``permission`` on the instance, or on ``org_id`` if given."""
        for scope, role in self.grants:
            if permission not in ROLE_PERMISSIONS.get(role, ()):
                continue
            if scope == INSTANCE_SCOPE or (org_id is not None and scope == org_id):
                return True
        return False

    def require(self, permission: str, org_id: str | None = None) -> None:
        if not self.has_permission(permission, org_id):
            raise TesseraError(Code.PERMISSION_DENIED, "AUTH-AWfge", "No matching permissions found")


_current: ContextVar[Principal | None] = ContextVar("tessera_principal", default=None)


def set_current(principal: Principal | None) -> object:
    return _current.set(principal)


def reset_current(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


def current() -> Principal:
    """The caller of the request being served; every served RPC requires authentication."""
    principal = _current.get()
    if principal is None:
        raise unauthenticated("AUTH-x8n3l", "auth header missing")
    return principal
