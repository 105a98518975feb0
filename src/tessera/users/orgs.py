"""Organization commands and queries."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, and_

from ..auth import permissions as perm
from ..auth.principal import Principal
from ..clock import now_us
from ..errors import already_exists, invalid_argument, not_found
from ..ids import new_id
from ..store import events
from ..store import users as store
from ..store.db import Database
from ..store.org_queries import condition, visible_to
from .model import Organization, WriteDetails
from .queries import OrgFilter, Page
from .service import NewHuman, UserService


def domain_for(name: str, base_domain: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "org"
    return f"{slug}.{base_domain}"


@dataclass(frozen=True)
class OrgAdmin:
    """An admin for a new organization: an existing user or a new human, with org roles."""

    user_id: str = ""
    human: NewHuman | None = None
    roles: tuple[str, ...] = ()


class OrgService:
    def __init__(self, db: Database, users: UserService, base_domain: str) -> None:
        self.db = db
        self.users = users
        self.base_domain = base_domain

    async def add(self, principal: Principal | None, name: str, *, org_id: str = "", domain: str = "",
                  admins: Sequence[OrgAdmin] = ()) -> tuple[str, WriteDetails, list[str]]:
        """Create an organization and its admins in one transaction; returns the admins' IDs."""
        name = name.strip()
        if not name or len(name) > 200:
            raise invalid_argument("ORG-mruNY", "Organization name must be 1 to 200 characters")
        if principal is not None:
            principal.require(perm.ORG_CREATE)
        if len(org_id) > 40:
            raise invalid_argument("ORG-iDl3n", "Organization ID must be at most 40 characters")
        org_id = org_id or new_id()
        domain = domain or domain_for(name, self.base_domain)
        prepared = [await self.users.prepare_human(a.human) if a.human else None for a in admins]

        def tx(conn: Connection) -> tuple[WriteDetails, list[str]]:
            if store.get_org(conn, org_id) is not None or store.org_name_taken(conn, name):
                raise already_exists("ORG-lapo2m", "Organization already exists")
            if store.domain_taken(conn, domain):
                raise already_exists("ORG-1r5lw", "Organization domain is already taken")
            at = now_us()
            store.insert_org(conn, org_id=org_id, name=name, domain=domain, at=at)
            events.append(conn, aggregate_type="org", aggregate_id=org_id, sequence=1, event_type="org.added",
                          creator=principal.user_id if principal else None, at=at,
                          payload={"name": name, "domain": domain})
            admin_ids = []
            for admin, human in zip(admins, prepared, strict=True):
                if human is not None:
                    self.users.insert_human(conn, None, human, org_id=org_id)
                    user_id = human.user_id
                elif store.get_user(conn, admin.user_id) is None:
                    raise not_found("ORG-4m9dS", "Admin user not found")
                else:
                    user_id = admin.user_id
                for role in admin.roles or ("ORG_OWNER",):
                    if role not in perm.ORG_ROLES:
                        raise invalid_argument("ORG-3m9Fs", f"Unknown organization role {role[:60]!r}")
                    store.add_membership(conn, user_id=user_id, scope=org_id, role=role)
                admin_ids.append(user_id)
            return WriteDetails(sequence=1, change_date=at, resource_owner=org_id, creation_date=at), admin_ids

        details, admin_ids = await self.db.write(tx)
        return org_id, details, admin_ids

    async def get(self, org_id: str) -> Organization | None:
        return await self.db.read(lambda conn: store.get_org(conn, org_id))

    async def list(self, principal: Principal | None, queries: list[OrgFilter], page: Page,
                   order_by: str) -> tuple[int, list[Organization]]:
        conditions: list[ColumnElement[bool]] = [condition(q) for q in queries]
        if principal is not None and not principal.has_permission(perm.ORG_READ):
            readable = [scope for scope, _ in principal.grants
                        if scope and principal.has_permission(perm.ORG_READ, scope)]
            conditions.append(visible_to(principal.org_id, readable))
        where = and_(*conditions) if conditions else None
        return await self.db.read(lambda conn: store.list_orgs(
            conn, where, offset=page.offset, limit=page.limit, asc=page.asc, order_by=order_by))
