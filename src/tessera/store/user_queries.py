"""Translate ListUsers filters into SQL conditions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, not_, or_, select, true

from ..users.queries import (
    AndQuery,
    IdsQuery,
    KindQuery,
    NotQuery,
    OrgQuery,
    OrQuery,
    StateQuery,
    TextMethod,
    TextQuery,
    UserField,
    UserQuery,
    UserSort,
)
from .schema import org_domains, users


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def text_condition(column: ColumnElement[Any], value: str, method: TextMethod) -> ColumnElement[bool]:
    ignore_case = method in (
        TextMethod.EQUALS_IGNORE_CASE, TextMethod.STARTS_WITH_IGNORE_CASE,
        TextMethod.CONTAINS_IGNORE_CASE, TextMethod.ENDS_WITH_IGNORE_CASE,
    )
    if ignore_case:
        column, value = func.lower(column), value.lower()
    if method in (TextMethod.EQUALS, TextMethod.EQUALS_IGNORE_CASE):
        return column == value
    escaped = _escape_like(value)
    pattern = {
        TextMethod.STARTS_WITH: f"{escaped}%", TextMethod.STARTS_WITH_IGNORE_CASE: f"{escaped}%",
        TextMethod.CONTAINS: f"%{escaped}%", TextMethod.CONTAINS_IGNORE_CASE: f"%{escaped}%",
        TextMethod.ENDS_WITH: f"%{escaped}", TextMethod.ENDS_WITH_IGNORE_CASE: f"%{escaped}",
    }[method]
    return column.like(pattern, escape="\\")


def has_rows(query: Select[Any]) -> ColumnElement[bool]:
    """``(SELECT count(*) …) > 0``: a correlated test PostgreSQL evaluates per row.

    Written as EXISTS, PostgreSQL pulls every such test up into a semi-join, and a request with
    a few dozen of them made its join planning explode (50 login-name queries: 8 s, 100: minutes).
    """
    # with_only_columns keeps the WHERE clause correlated with the outer row; wrapping the query
    # in .subquery() would not, and would count matches across all users instead of this one.
    counted = query.with_only_columns(func.count(), maintain_column_froms=True)
    return counted.scalar_subquery() > 0


def _login_name(value: str, method: TextMethod) -> ColumnElement[bool]:
    """A login name is ``username@domain`` for any domain of the user's organization."""
    login = users.c.username + "@" + org_domains.c.domain
    return has_rows(select(org_domains.c.org_id).where(
        org_domains.c.org_id == users.c.org_id, text_condition(login, value, method)
    ))


def condition(query: UserQuery) -> ColumnElement[bool]:
    match query:
        case TextQuery(field=UserField.LOGIN_NAME, value=value, method=method):
            return _login_name(value, method)
        case TextQuery(field=field, value=value, method=method):
            return text_condition(users.c[field.value], value, method)
        case IdsQuery(ids=ids):
            return users.c.id.in_(ids) if ids else false()
        case OrgQuery(org_id=org_id):
            return users.c.org_id == org_id
        case KindQuery(kind=kind):
            return users.c.kind == kind
        case StateQuery(state=state):
            return users.c.state == state
        case AndQuery(queries=queries):
            return and_(true(), *(condition(q) for q in queries))
        case OrQuery(queries=queries):
            return or_(false(), *(condition(q) for q in queries))
        case NotQuery(query=inner):
            return not_(condition(inner))
    raise TypeError(f"unsupported user query {query!r}")


_SORT_COLUMNS = {
    UserSort.USER_NAME: users.c.username_lower,
    UserSort.FIRST_NAME: users.c.given_name,
    UserSort.LAST_NAME: users.c.family_name,
    UserSort.NICK_NAME: users.c.nick_name,
    UserSort.DISPLAY_NAME: users.c.display_name,
    UserSort.EMAIL: users.c.email_lower,
    UserSort.STATE: users.c.state,
    UserSort.TYPE: users.c.kind,
    UserSort.CREATION_DATE: users.c.created_at,
}


def order(sort: UserSort, asc: bool) -> ColumnElement[Any]:
    column = _SORT_COLUMNS.get(sort, users.c.created_at)
    return column.asc() if asc else column.desc()


def visible_to(org_ids: frozenset[str], own_user_id: str) -> ColumnElement[bool]:
    """Users in the organizations a caller may read, plus the caller itself."""
    return or_(users.c.id == own_user_id, users.c.org_id.in_(org_ids) if org_ids else false())
