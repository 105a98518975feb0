"""Translate ListOrganizations filters into SQL conditions."""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, select

from ..users.queries import OrgFilter
from .schema import org_domains, organizations
from .user_queries import has_rows, text_condition


def condition(query: OrgFilter) -> ColumnElement[bool]:
    if query.field == "name":
        return text_condition(organizations.c.name, query.value, query.method)
    if query.field == "domain":
        return has_rows(select(org_domains.c.org_id).where(
            org_domains.c.org_id == organizations.c.id,
            text_condition(org_domains.c.domain, query.value, query.method),
        ))
    if query.field == "id":
        return organizations.c.id == query.value
    if query.field == "state":
        return organizations.c.state == int(query.value)
    return false()


def visible_to(own_org_id: str, readable: list[str]) -> ColumnElement[bool]:
    return or_(organizations.c.id == own_org_id, organizations.c.id.in_(readable))
