"""zitadel.user.v2.UserService: converts wire messages to UserService calls and back."""

from __future__ import annotations

from typing import Any

from protobuf import Oneof

from ..auth.authenticate import Authenticator
from ..auth.principal import Principal
from ..clock import now_us
from ..config import Settings
from ..errors import invalid_argument
from ..gen.zitadel.filter.v2 import filter_pb
from ..gen.zitadel.object.v2 import object_pb
from ..gen.zitadel.user.v2 import email_pb, pat_pb, phone_pb, query_pb, user_pb
from ..gen.zitadel.user.v2 import user_service_pb as pb
from ..gen.zitadel.user.v2.user_service_connect import UserService as UserServiceProtocol
from ..users import queries as q
from ..users.keys import MachineKeys
from ..users.model import MACHINE, AccessTokenType, User, UserState
from ..users.service import NewHuman, NewMachine, Profile, UserService
from . import convert
from .key_handlers import MachineKeyHandlers
from .rpc import rpc


def _required_id(value: str, what: str = "user_id") -> str:
    if not value or len(value) > 200:
        raise invalid_argument("USER-iD1x", f"{what} must be 1 to 200 characters")
    return value


def profile_from(p: user_pb.SetHumanProfile | None) -> Profile:
    if p is None:
        return Profile()
    return Profile(given_name=p.given_name, family_name=p.family_name, nick_name=p.nick_name or "",
                   display_name=p.display_name or "", preferred_language=p.preferred_language or "",
                   gender=int(convert.enum_value(user_pb.Gender, p.gender or 0, "gender")))


def email_from(e: email_pb.SetHumanEmail | None) -> tuple[str, bool]:
    if e is None:
        return "", False
    verified = e.verification is not None and e.verification.field == "is_verified" and bool(e.verification.value)
    return e.email, verified


def phone_from(p: phone_pb.SetHumanPhone | None) -> tuple[str, bool]:
    if p is None:
        return "", False
    verified = p.verification is not None and p.verification.field == "is_verified" and bool(p.verification.value)
    return p.phone, verified


def password_fields(choice: Any) -> dict[str, Any]:
    """Fields of NewHuman from a ``password_type`` oneof (Password or HashedPassword)."""
    if choice is None:
        return {}
    if choice.field == "password":
        return {"password": choice.value.password, "password_change_required": choice.value.change_required}
    return {"hashed_password": choice.value.hash, "password_change_required": choice.value.change_required}


def user_message(user: User) -> user_pb.User:
    common: dict[str, Any] = {"user_id": user.id, "state": user_pb.UserState(int(user.state)),
                              "username": user.username, "login_names": user.login_names,
                              "preferred_login_name": user.preferred_login_name}
    details = object_pb.Details(sequence=user.sequence, change_date=convert.timestamp(user.changed_at),
                                resource_owner=user.org_id, creation_date=convert.timestamp(user.created_at))
    if user.kind == MACHINE:
        kind: Any = ("machine", user_pb.MachineUser(
            name=user.machine_name, description=user.machine_description, has_secret=user.has_secret,
            access_token_type=user_pb.AccessTokenType(int(user.access_token_type))))
    else:
        kind = ("human", user_pb.HumanUser(
            **common,
            profile=user_pb.HumanProfile(
                given_name=user.given_name, family_name=user.family_name, nick_name=user.nick_name or None,
                display_name=user.effective_display_name, preferred_language=user.preferred_language or None,
                gender=user_pb.Gender(user.gender) if user.gender else None),
            email=email_pb.HumanEmail(email=user.email, is_verified=user.email_verified),
            phone=phone_pb.HumanPhone(phone=user.phone, is_verified=user.phone_verified),
            password_change_required=user.password_change_required,
            password_changed=convert.timestamp(user.password_changed_at)))
    return user_pb.User(**common, details=details, type=Oneof(field=kind[0], value=kind[1]))


_TEXT_QUERIES: dict[str, tuple[q.UserField, str]] = {
    "user_name_query": (q.UserField.USERNAME, "user_name"),
    "first_name_query": (q.UserField.FIRST_NAME, "first_name"),
    "last_name_query": (q.UserField.LAST_NAME, "last_name"),
    "nick_name_query": (q.UserField.NICK_NAME, "nick_name"),
    "display_name_query": (q.UserField.DISPLAY_NAME, "display_name"),
    "email_query": (q.UserField.EMAIL, "email_address"),
    "phone_query": (q.UserField.PHONE, "number"),
    "login_name_query": (q.UserField.LOGIN_NAME, "login_name"),
}


def user_query(search: query_pb.SearchQuery, depth: int = 0) -> q.UserQuery:
    if depth > 20:
        raise invalid_argument("USER-Qdeep", "Queries are nested too deeply")
    if search.query is None:
        raise invalid_argument("GRPC-Sfefs", "List.Query.Invalid")
    kind, value = search.query.field, search.query.value
    if kind in _TEXT_QUERIES:
        field, attr = _TEXT_QUERIES[kind]
        return q.TextQuery(field, getattr(value, attr), convert.enum_value(q.TextMethod, value.method, "method"))
    if kind == "in_user_ids_query":
        return q.IdsQuery(tuple(value.user_ids))
    if kind == "in_user_emails_query":
        return q.OrQuery(tuple(q.TextQuery(q.UserField.EMAIL, e, q.TextMethod.EQUALS_IGNORE_CASE)
                               for e in value.user_emails))
    if kind == "organization_id_query":
        return q.OrgQuery(value.organization_id)
    if kind == "type_query":
        kind_number = convert.enum_value(query_pb.Type, value.type, "type")
        return q.KindQuery({query_pb.Type.HUMAN: "human", query_pb.Type.MACHINE: "machine"}.get(kind_number, ""))
    if kind == "state_query":
        return q.StateQuery(int(convert.enum_value(UserState, value.state, "state")))
    if kind == "and_query":
        return q.AndQuery(tuple(user_query(s, depth + 1) for s in value.queries))
    if kind == "or_query":
        return q.OrQuery(tuple(user_query(s, depth + 1) for s in value.queries))
    if kind == "not_query":
        if value.query is None:
            raise invalid_argument("GRPC-Sfefs", "List.Query.Invalid")
        return q.NotQuery(user_query(value.query, depth + 1))
    raise invalid_argument("GRPC-Sfefs", "List.Query.Invalid")


# A request's filters become one SQL statement; this bounds its size (and its planning time on
# PostgreSQL): 1000 plain conditions, or 100 login-name conditions (a correlated subquery each).
MAX_QUERY_COST = 1000


def query_cost(query: q.UserQuery) -> int:
    if isinstance(query, (q.AndQuery, q.OrQuery)):
        return 1 + sum(query_cost(inner) for inner in query.queries)
    if isinstance(query, q.NotQuery):
        return 1 + query_cost(query.query)
    if isinstance(query, q.TextQuery) and query.field == q.UserField.LOGIN_NAME:
        return 10
    return 1


class UserHandlers(MachineKeyHandlers, UserServiceProtocol):  # type: ignore[misc]  # generated stubs are skipped, so Any
    """Implements the generated UserService protocol (keys and secrets in MachineKeyHandlers)."""

    def __init__(self, users: UserService, authenticator: Authenticator, settings: Settings,
                 machine_keys: MachineKeys | None = None) -> None:
        self.users = users
        self.authenticator = authenticator
        self.settings = settings
        self.machine_keys = machine_keys

    @rpc
    async def add_human_user(self, request: pb.AddHumanUserRequest, principal: Principal) -> pb.AddHumanUserResponse:
        org = request.organization.org if request.organization else None
        email, email_verified = email_from(request.email)
        phone, phone_verified = phone_from(request.phone)
        new = NewHuman(
            org_id=org.value if org and org.field == "org_id" else (None if org else principal.org_id),
            org_domain=org.value if org and org.field == "org_domain" else None,
            profile=profile_from(request.profile), email=email, email_verified=email_verified,
            phone=phone, phone_verified=phone_verified, user_id=request.user_id or "",
            username=request.username or "", **password_fields(request.password_type))
        user_id, details = await self.users.add_human(principal, new)
        return pb.AddHumanUserResponse(user_id=user_id, details=convert.details(details))

    @rpc
    async def create_user(self, request: pb.CreateUserRequest, principal: Principal) -> pb.CreateUserResponse:
        if request.user_type is None:
            raise invalid_argument("USER-7nd3f", "Either human or machine is required")
        org_id = request.organization_id or principal.org_id
        if request.user_type.field == "machine":
            machine = request.user_type.value
            user_id, details = await self.users.add_machine(principal, NewMachine(
                org_id=org_id, user_id=request.user_id or "", name=machine.name,
                username=request.username or "",
                description=machine.description or "",
                access_token_type=convert.enum_value(AccessTokenType, machine.access_token_type,
                                                     "access_token_type")))
        else:
            human = request.user_type.value
            email, email_verified = email_from(human.email)
            phone, phone_verified = phone_from(human.phone)
            user_id, details = await self.users.add_human(principal, NewHuman(
                org_id=org_id, org_domain=None, profile=profile_from(human.profile), email=email,
                email_verified=email_verified, phone=phone, phone_verified=phone_verified,
                user_id=request.user_id or "", username=request.username or "",
                **password_fields(human.password_type)))
        return pb.CreateUserResponse(id=user_id, creation_date=convert.timestamp(details.creation_date))

    @rpc
    async def get_user_by_id(self, request: pb.GetUserByIDRequest, principal: Principal) -> pb.GetUserByIDResponse:
        user = await self.users.get(principal, _required_id(request.user_id))
        message = user_message(user)
        return pb.GetUserByIDResponse(details=message.details, user=message)

    @rpc
    async def list_users(self, request: pb.ListUsersRequest, principal: Principal) -> pb.ListUsersResponse:
        query = request.query or object_pb.ListQuery()
        page = convert.page(query.offset, query.limit, query.asc, default_limit=self.settings.default_query_limit,
                            max_limit=self.settings.max_query_limit)
        filters = tuple(user_query(s) for s in request.queries)
        combined = q.AndQuery(filters) if filters else None
        if combined is not None and query_cost(combined) > MAX_QUERY_COST:
            raise invalid_argument("USER-Qcost", "Too many queries in one request")
        sort = convert.enum_value(q.UserSort, request.sorting_column, "sorting_column")
        total, users = await self.users.list(principal, combined, page, sort)
        return pb.ListUsersResponse(details=convert.list_details(total, now_us()),
                                    sorting_column=request.sorting_column,
                                    result=[user_message(u) for u in users])

    @rpc
    async def set_password(self, request: pb.SetPasswordRequest, principal: Principal) -> pb.SetPasswordResponse:
        if request.new_password is None:
            raise invalid_argument("USER-pw0Ne", "new_password is required")
        current = None
        if request.verification is not None:
            if request.verification.field != "current_password":
                raise invalid_argument("USER-vc0de", "Verification codes are not supported; use current_password")
            current = request.verification.value
        details = await self.users.set_password(principal, _required_id(request.user_id),
                                                request.new_password.password,
                                                request.new_password.change_required, current)
        return pb.SetPasswordResponse(details=convert.details(details))

    @rpc
    async def lock_user(self, request: pb.LockUserRequest, principal: Principal) -> pb.LockUserResponse:
        return pb.LockUserResponse(details=convert.details(
            await self.users.lock(principal, _required_id(request.user_id))))

    @rpc
    async def unlock_user(self, request: pb.UnlockUserRequest, principal: Principal) -> pb.UnlockUserResponse:
        return pb.UnlockUserResponse(details=convert.details(
            await self.users.unlock(principal, _required_id(request.user_id))))

    @rpc
    async def deactivate_user(self, request: pb.DeactivateUserRequest,
                              principal: Principal) -> pb.DeactivateUserResponse:
        return pb.DeactivateUserResponse(details=convert.details(
            await self.users.deactivate(principal, _required_id(request.user_id))))

    @rpc
    async def reactivate_user(self, request: pb.ReactivateUserRequest,
                              principal: Principal) -> pb.ReactivateUserResponse:
        return pb.ReactivateUserResponse(details=convert.details(
            await self.users.reactivate(principal, _required_id(request.user_id))))

    @rpc
    async def delete_user(self, request: pb.DeleteUserRequest, principal: Principal) -> pb.DeleteUserResponse:
        return pb.DeleteUserResponse(details=convert.details(
            await self.users.delete(principal, _required_id(request.user_id))))

    @rpc
    async def register_totp(self, request: pb.RegisterTOTPRequest, principal: Principal) -> pb.RegisterTOTPResponse:
        registration = await self.users.register_totp(principal, _required_id(request.user_id))
        return pb.RegisterTOTPResponse(details=convert.details(registration.details), uri=registration.uri,
                                       secret=registration.secret)

    @rpc
    async def verify_totp_registration(self, request: pb.VerifyTOTPRegistrationRequest,
                                       principal: Principal) -> pb.VerifyTOTPRegistrationResponse:
        details = await self.users.verify_totp_registration(principal, _required_id(request.user_id), request.code)
        return pb.VerifyTOTPRegistrationResponse(details=convert.details(details))

    @rpc
    async def remove_totp(self, request: pb.RemoveTOTPRequest, principal: Principal) -> pb.RemoveTOTPResponse:
        return pb.RemoveTOTPResponse(details=convert.details(
            await self.users.remove_totp(principal, _required_id(request.user_id))))

    @rpc
    async def add_personal_access_token(self, request: pb.AddPersonalAccessTokenRequest,
                                        principal: Principal) -> pb.AddPersonalAccessTokenResponse:
        pat = await self.users.add_pat(principal, _required_id(request.user_id),
                                       convert.micros(request.expiration_date))
        return pb.AddPersonalAccessTokenResponse(creation_date=convert.timestamp(pat.created_at),
                                                 token_id=pat.token_id, token=pat.token)

    @rpc
    async def remove_personal_access_token(self, request: pb.RemovePersonalAccessTokenRequest,
                                           principal: Principal) -> pb.RemovePersonalAccessTokenResponse:
        details = await self.users.remove_pat(principal, _required_id(request.user_id),
                                              _required_id(request.token_id, "token_id"))
        return pb.RemovePersonalAccessTokenResponse(deletion_date=convert.timestamp(details.change_date))

    @rpc
    async def list_personal_access_tokens(self, request: pb.ListPersonalAccessTokensRequest,
                                          principal: Principal) -> pb.ListPersonalAccessTokensResponse:
        pagination = request.pagination or filter_pb.PaginationRequest()
        page = convert.page(pagination.offset, pagination.limit, pagination.asc,
                            default_limit=self.settings.default_query_limit,
                            max_limit=self.settings.max_query_limit)
        user_ids: list[str] = []
        token_ids: list[str] = []
        org_id = None
        for search in request.filters:
            if search.filter is None:
                raise invalid_argument("GRPC-Sfefs", "List.Query.Invalid")
            if search.filter.field == "user_id_filter":
                user_ids.append(search.filter.value.id)
            elif search.filter.field == "token_id_filter":
                token_ids.append(search.filter.value.id)
            elif search.filter.field == "organization_id_filter":
                org_id = search.filter.value.id
            else:
                raise invalid_argument("USER-pf1lt", "Only token, user and organization filters are supported")
        total, pats = await self.users.list_pats(principal, tuple(user_ids) or None, tuple(token_ids) or None,
                                                 org_id, page)
        return pb.ListPersonalAccessTokensResponse(
            pagination=filter_pb.PaginationResponse(total_result=total, applied_limit=page.limit),
            result=[pat_pb.PersonalAccessToken(
                creation_date=convert.timestamp(p.created_at), change_date=convert.timestamp(p.created_at),
                id=p.id, user_id=p.user_id, organization_id=p.org_id,
                expiration_date=convert.timestamp(p.expires_at)) for p in pats])
