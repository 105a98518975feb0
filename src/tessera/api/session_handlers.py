"""zitadel.session.v2.SessionService: wire messages to SessionService calls and back."""

from __future__ import annotations

from typing import Any

from ..auth.authenticate import Authenticator
from ..auth.principal import Principal
from ..clock import now_us
from ..config import Settings
from ..errors import Code, TesseraError, invalid_argument
from ..gen.zitadel.object.v2 import object_pb
from ..gen.zitadel.session.v2 import session_pb
from ..gen.zitadel.session.v2 import session_service_pb as pb
from ..gen.zitadel.session.v2.session_service_connect import SessionService as SessionServiceProtocol
from ..sessions import model as m
from ..sessions.service import MAX_ID_LENGTH, Checks, SessionChange, SessionService, WriteResult
from . import convert
from .rpc import rpc, rpc_reading

_UNSUPPORTED_CHECKS = ("web_auth_n", "idp_intent", "otp_sms", "otp_email", "recovery_code")


def _checks(checks: pb.Checks | None) -> Checks:
    if checks is None:
        return Checks()
    user_id = login_name = None
    if checks.user is not None:
        if checks.user.search is None:
            raise invalid_argument("SESSION-usr01", "checks.user needs userId or loginName")
        if checks.user.search.field == "user_id":
            user_id = checks.user.search.value
        else:
            login_name = checks.user.search.value
    return Checks(
        user_id=user_id, login_name=login_name,
        password=checks.password.password if checks.password is not None else None,
        totp=checks.totp.code if checks.totp is not None else None,
        unsupported=tuple(name for name in _UNSUPPORTED_CHECKS if getattr(checks, name) is not None))


# ZITADEL converts the lifetime to Go's time.Duration, which saturates at about 292 years; so does
# Tessera, which also keeps every expiration date within the range a protobuf Timestamp can carry.
_MAX_LIFETIME_US = (2**63 - 1) // 1000


def _lifetime(value: Any) -> int | None:
    micros = convert.duration_micros(value)
    if micros is not None and micros < 0:
        raise invalid_argument("COMMAND-asEG4", "Lifetime must be positive")
    if micros == 0 and value is not None and (value.seconds > 0 or value.nanos > 0):
        micros = 1  # below a microsecond is still a lifetime; 0 would mean "never expires"
    return min(micros, _MAX_LIFETIME_US) if micros else None


def _user_agent(agent: session_pb.UserAgent | None) -> m.UserAgent | None:
    if agent is None:
        return None
    return m.UserAgent(fingerprint_id=agent.fingerprint_id or "", ip=agent.ip or "",
                       description=agent.description or "",
                       header={k: list(v.values) for k, v in agent.header.items()})


def _reject_challenges(challenges: Any) -> None:
    if challenges is not None and any(getattr(challenges, n, None) is not None
                                      for n in ("web_auth_n", "otp_sms", "otp_email")):
        raise TesseraError(Code.UNIMPLEMENTED, "SESSION-chal0", "Challenges are not supported by this server")


def _optional(message: Any, name: str) -> str | None:
    """An ``optional string`` field: None when absent, the value (possibly empty) when present."""
    value = getattr(message, name)
    if value:  # a non-empty value is present; only an empty one needs the (slower) presence check
        return str(value)
    return "" if message.has_field(name) else None


_ts = convert.timestamp


def session_message(s: m.Session) -> session_pb.Session:
    f = s.factors
    factors = None
    if s.user_id is not None and f.user_checked_at is not None:
        factors = session_pb.Factors(
            user=session_pb.UserFactor(verified_at=_ts(f.user_checked_at), id=s.user_id,
                                       login_name=s.user_login_name, display_name=s.user_display_name,
                                       organization_id=s.user_org_id or ""),
            password=session_pb.PasswordFactor(verified_at=_ts(f.password_checked_at))
            if f.password_checked_at else None,
            totp=session_pb.TOTPFactor(verified_at=_ts(f.totp_checked_at)) if f.totp_checked_at else None,
        )
    agent = None
    if s.user_agent is not None and not s.user_agent.is_empty():
        ua = s.user_agent
        agent = session_pb.UserAgent(
            fingerprint_id=ua.fingerprint_id or None, ip=ua.ip or None, description=ua.description or None,
            header={k: session_pb.UserAgent.HeaderValues(values=v) for k, v in ua.header.items()})
    return session_pb.Session(
        id=s.id, creation_date=_ts(s.created_at), change_date=_ts(s.changed_at), sequence=s.sequence,
        factors=factors, metadata=dict(s.metadata), user_agent=agent, expiration_date=_ts(s.expires_at))


def _query_id(value: str, what: str) -> str:
    if len(value) > MAX_ID_LENGTH:
        raise invalid_argument("GRPC-Dwigt", f"{what} must be at most {MAX_ID_LENGTH} characters")
    return value


def _filter(query: session_pb.SearchQuery, principal: Principal) -> m.SessionFilter:
    if query.query is None:
        raise invalid_argument("GRPC-Sfefs", "List.Query.Invalid")
    kind, value = query.query.field, query.query.value
    if kind == "ids_query":
        return m.IdsFilter(tuple(_query_id(i, "idsQuery.ids") for i in value.ids))
    if kind == "user_id_query":
        return m.UserIdFilter(_query_id(value.id, "userIdQuery.id"))
    if kind == "creation_date_query":
        return m.CreationDateFilter(convert.micros(value.creation_date) or 0,
                                    convert.enum_value(m.TimestampMethod, value.method, "creationDateQuery.method"))
    if kind == "expiration_date_query":
        return m.ExpirationDateFilter(convert.micros(value.expiration_date) or 0, convert.enum_value(
            m.TimestampMethod, value.method, "expirationDateQuery.method"))
    if kind == "creator_query":
        creator = value.id if value.has_field("id") else principal.user_id
        if not creator:
            raise invalid_argument("GRPC-x8n24uh", "List.Query.Invalid")
        return m.CreatorFilter(_query_id(creator, "creatorQuery.id"))
    if kind == "user_agent_query":
        # Tessera's tokens carry no user agent, so an absent fingerprint cannot be filled in.
        if not value.fingerprint_id:
            raise invalid_argument("GRPC-x8n23uh", "List.Query.Invalid")
        return m.FingerprintFilter(_query_id(value.fingerprint_id, "userAgentQuery.fingerprintId"))
    raise invalid_argument("GRPC-Sfefs", "List.Query.Invalid")


class SessionHandlers(SessionServiceProtocol):  # type: ignore[misc]
    def __init__(self, sessions: SessionService, authenticator: Authenticator, settings: Settings) -> None:
        self.sessions = sessions
        self.authenticator = authenticator
        self.settings = settings

    def _details(self, result: WriteResult) -> object_pb.Details:
        return object_pb.Details(sequence=result.sequence, change_date=_ts(result.change_date),
                                 resource_owner=self.sessions.instance_id)

    @rpc
    async def create_session(self, request: pb.CreateSessionRequest, principal: Principal) -> pb.CreateSessionResponse:
        _reject_challenges(request.challenges)
        change = SessionChange(checks=_checks(request.checks), metadata=dict(request.metadata),
                               lifetime_us=_lifetime(request.lifetime), user_agent=_user_agent(request.user_agent))
        result = await self.sessions.create(principal, change)
        return pb.CreateSessionResponse(details=self._details(result), session_id=result.session_id,
                                        session_token=result.token)

    @rpc_reading(lambda self, request: self.sessions.first_read(request.session_id))
    async def set_session(self, request: pb.SetSessionRequest, principal: Principal,
                          read: list[Any] | None) -> pb.SetSessionResponse:
        _reject_challenges(request.challenges)
        change = SessionChange(checks=_checks(request.checks), metadata=dict(request.metadata),
                               lifetime_us=_lifetime(request.lifetime))
        result = await self.sessions.set(principal, request.session_id, change, read)
        return pb.SetSessionResponse(details=self._details(result), session_token=result.token)

    @rpc_reading(lambda self, request: self.sessions.first_read(request.session_id))
    async def get_session(self, request: pb.GetSessionRequest, principal: Principal,
                          read: list[Any] | None) -> pb.GetSessionResponse:
        session = await self.sessions.get(principal, request.session_id, _optional(request, "session_token"), read)
        return pb.GetSessionResponse(session=session_message(session))

    @rpc
    async def list_sessions(self, request: pb.ListSessionsRequest, principal: Principal) -> pb.ListSessionsResponse:
        query = request.query or object_pb.ListQuery()
        page = convert.page(query.offset, query.limit, query.asc, default_limit=self.settings.default_query_limit,
                            max_limit=self.settings.max_query_limit)
        filters = [_filter(q, principal) for q in request.queries]
        column = convert.enum_value(session_pb.SessionFieldName, request.sorting_column, "sortingColumn")
        total, sessions = await self.sessions.list(
            principal, filters, offset=page.offset, limit=page.limit,
            sort_by_creation=column == session_pb.SessionFieldName.CREATION_DATE, asc=page.asc)
        return pb.ListSessionsResponse(details=convert.list_details(total, now_us()),
                                       sessions=[session_message(s) for s in sessions])

    @rpc
    async def delete_session(self, request: pb.DeleteSessionRequest, principal: Principal) -> pb.DeleteSessionResponse:
        result = await self.sessions.delete(principal, request.session_id, _optional(request, "session_token"))
        return pb.DeleteSessionResponse(details=self._details(result))
