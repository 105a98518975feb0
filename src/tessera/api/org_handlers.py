"""zitadel.org.v2.OrganizationService."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..auth.authenticate import Authenticator
from ..auth.principal import Principal
from ..clock import now_us
from ..config import Settings
from ..errors import invalid_argument
from ..gen.zitadel.object.v2 import object_pb
from ..gen.zitadel.org.v2 import org_pb, query_pb
from ..gen.zitadel.org.v2 import org_service_pb as pb
from ..gen.zitadel.org.v2.org_service_connect import (
    OrganizationService as OrganizationServiceProtocol,
)
from ..users.model import Organization
from ..users.orgs import OrgAdmin, OrgService
from ..users.queries import OrgFilter, TextMethod
from ..users.service import NewHuman
from . import convert
from .rpc import rpc
from .user_handlers import email_from, password_fields, phone_from, profile_from


def org_message(org: Organization) -> org_pb.Organization:
    return org_pb.Organization(
        id=org.id,
        details=object_pb.Details(sequence=org.sequence, change_date=convert.timestamp(org.changed_at),
                                  resource_owner=org.id, creation_date=convert.timestamp(org.created_at)),
        state=org_pb.OrganizationState(org.state), name=org.name, primary_domain=org.primary_domain)


MAX_ORG_QUERIES = 100  # each domain query is a correlated subquery; this bounds the statement


def _org_query(search: query_pb.SearchQuery, default_org_id: str) -> OrgFilter:
    if search.query is None:
        raise invalid_argument("GRPC-Sfefs", "List.Query.Invalid")
    kind, value = search.query.field, search.query.value
    if kind == "name_query":
        return OrgFilter("name", value.name, convert.enum_value(TextMethod, value.method, "method"))
    if kind == "domain_query":
        return OrgFilter("domain", value.domain, convert.enum_value(TextMethod, value.method, "method"))
    if kind == "state_query":
        return OrgFilter("state", str(int(convert.enum_value(org_pb.OrganizationState, value.state, "state"))))
    if kind == "id_query":
        return OrgFilter("id", value.id)
    if kind == "default_query":
        return OrgFilter("id", default_org_id)
    raise invalid_argument("GRPC-Sfefs", "List.Query.Invalid")


class OrgHandlers(OrganizationServiceProtocol):  # type: ignore[misc]  # generated stubs are skipped, so Any
    def __init__(self, orgs: OrgService, authenticator: Authenticator, settings: Settings,
                 default_org_id: Callable[[], Awaitable[str]]) -> None:
        self.orgs = orgs
        self.authenticator = authenticator
        self.settings = settings
        self._default_org_id = default_org_id

    @rpc
    async def add_organization(self, request: pb.AddOrganizationRequest,
                               principal: Principal) -> pb.AddOrganizationResponse:
        admins = []
        for admin in request.admins:
            if admin.user_type is None:
                raise invalid_argument("ORG-adm1n", "An admin needs user_id or human")
            roles = tuple(admin.roles)
            if admin.user_type.field == "user_id":
                admins.append(OrgAdmin(user_id=admin.user_type.value, roles=roles))
                continue
            human = admin.user_type.value
            email, email_verified = email_from(human.email)
            phone, phone_verified = phone_from(human.phone)
            admins.append(OrgAdmin(roles=roles, human=NewHuman(
                org_id=None, org_domain=None, profile=profile_from(human.profile), email=email,
                email_verified=email_verified, phone=phone, phone_verified=phone_verified,
                user_id=human.user_id or "", username=human.username or "",
                **password_fields(human.password_type))))
        org_id, details, admin_ids = await self.orgs.add(
            principal, request.name, org_id=request.organization_id or request.org_id or "", admins=admins)
        return pb.AddOrganizationResponse(
            details=convert.details(details), organization_id=org_id,
            created_admins=[pb.AddOrganizationResponse.CreatedAdmin(user_id=i) for i in admin_ids])

    @rpc
    async def list_organizations(self, request: pb.ListOrganizationsRequest,
                                 principal: Principal) -> pb.ListOrganizationsResponse:
        query = request.query or object_pb.ListQuery()
        page = convert.page(query.offset, query.limit, query.asc, default_limit=self.settings.default_query_limit,
                            max_limit=self.settings.max_query_limit)
        default_org = await self._default_org_id()
        if len(request.queries) > MAX_ORG_QUERIES:
            raise invalid_argument("ORG-Qcost", f"At most {MAX_ORG_QUERIES} queries are allowed in one request")
        filters = [_org_query(s, default_org) for s in request.queries]
        sort = convert.enum_value(query_pb.OrganizationFieldName, request.sorting_column, "sorting_column")
        order_by = "name" if sort == query_pb.OrganizationFieldName.NAME else "created"
        total, orgs = await self.orgs.list(principal, filters, page, order_by)
        return pb.ListOrganizationsResponse(details=convert.list_details(total, now_us()),
                                            sorting_column=request.sorting_column,
                                            result=[org_message(o) for o in orgs])

