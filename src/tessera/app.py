"""Builds the ASGI application: every protocol adapter mounted over one set of handlers."""

from __future__ import annotations

from typing import Any

from .api.asgi import ASGIApp, TesseraApp
from .api.compat import CheckedBinaryCodec, TolerantJSONCodec
from .api.cors import CORSMiddleware
from .api.grpc import GrpcAdapter, standard_services
from .api.me import MeEndpoint
from .api.oauth import oauth_routes
from .api.org_handlers import OrgHandlers
from .api.rest import RestRouter, Route
from .api.session_handlers import SessionHandlers
from .api.settings_handlers import SettingsHandlers
from .api.user_handlers import UserHandlers
from .container import Container
from .gen.zitadel.org.v2 import org_service_pb as org_pb
from .gen.zitadel.org.v2.org_service_connect import OrganizationServiceASGIApplication
from .gen.zitadel.session.v2 import session_service_pb as session_pb
from .gen.zitadel.session.v2.session_service_connect import SessionServiceASGIApplication
from .gen.zitadel.settings.v2 import settings_service_pb as settings_pb
from .gen.zitadel.settings.v2.settings_service_connect import SettingsServiceASGIApplication
from .gen.zitadel.user.v2 import user_service_pb as user_pb
from .gen.zitadel.user.v2.user_service_connect import UserServiceASGIApplication
from .sessions.pruning import prune_periodically


def _user_routes(h: UserHandlers) -> list[Route]:
    return [
        Route("POST", "/v2/users/new", h.create_user, user_pb.CreateUserRequest),
        Route("POST", "/v2/users/human", h.add_human_user, user_pb.AddHumanUserRequest),
        Route("POST", "/v2/users/pats/search", h.list_personal_access_tokens,
              user_pb.ListPersonalAccessTokensRequest),
        Route("GET", "/v2/users/{user_id}", h.get_user_by_id, user_pb.GetUserByIDRequest, body=False),
        Route("DELETE", "/v2/users/{user_id}", h.delete_user, user_pb.DeleteUserRequest, body=False),
        Route("POST", "/v2/users", h.list_users, user_pb.ListUsersRequest),
        Route("POST", "/v2/users/{user_id}/password", h.set_password, user_pb.SetPasswordRequest),
        Route("POST", "/v2/users/{user_id}/lock", h.lock_user, user_pb.LockUserRequest),
        Route("POST", "/v2/users/{user_id}/unlock", h.unlock_user, user_pb.UnlockUserRequest),
        Route("POST", "/v2/users/{user_id}/deactivate", h.deactivate_user, user_pb.DeactivateUserRequest),
        Route("POST", "/v2/users/{user_id}/reactivate", h.reactivate_user, user_pb.ReactivateUserRequest),
        Route("POST", "/v2/users/{user_id}/totp", h.register_totp, user_pb.RegisterTOTPRequest),
        Route("POST", "/v2/users/{user_id}/totp/verify", h.verify_totp_registration,
              user_pb.VerifyTOTPRegistrationRequest),
        Route("DELETE", "/v2/users/{user_id}/totp", h.remove_totp, user_pb.RemoveTOTPRequest, body=False),
        Route("POST", "/v2/users/{user_id}/pats", h.add_personal_access_token,
              user_pb.AddPersonalAccessTokenRequest),
        Route("DELETE", "/v2/users/{user_id}/pats/{token_id}", h.remove_personal_access_token,
              user_pb.RemovePersonalAccessTokenRequest, body=False),
        Route("POST", "/v2/users/keys/search", h.list_keys, user_pb.ListKeysRequest),
        Route("POST", "/v2/users/{user_id}/keys", h.add_key, user_pb.AddKeyRequest),
        Route("DELETE", "/v2/users/{user_id}/keys/{key_id}", h.remove_key, user_pb.RemoveKeyRequest, body=False),
        Route("POST", "/v2/users/{user_id}/secret", h.add_secret, user_pb.AddSecretRequest),
        Route("DELETE", "/v2/users/{user_id}/secret", h.remove_secret, user_pb.RemoveSecretRequest, body=False),
    ]


def _org_routes(h: OrgHandlers) -> list[Route]:
    return [
        Route("POST", "/v2/organizations", h.add_organization, org_pb.AddOrganizationRequest, success_status=201),
        Route("POST", "/v2/organizations/_search", h.list_organizations, org_pb.ListOrganizationsRequest),
    ]


def _session_routes(h: SessionHandlers) -> list[Route]:
    return [
        Route("POST", "/v2/sessions/search", h.list_sessions, session_pb.ListSessionsRequest),
        Route("POST", "/v2/sessions", h.create_session, session_pb.CreateSessionRequest, success_status=201),
        Route("GET", "/v2/sessions/{session_id}", h.get_session, session_pb.GetSessionRequest, body=False),
        Route("PATCH", "/v2/sessions/{session_id}", h.set_session, session_pb.SetSessionRequest),
        Route("DELETE", "/v2/sessions/{session_id}", h.delete_session, session_pb.DeleteSessionRequest),
    ]


def _settings_routes(h: SettingsHandlers) -> list[Route]:
    return [
        Route("GET", "/v2/settings", h.get_general_settings, settings_pb.GetGeneralSettingsRequest, body=False),
    ]


def build_app(container: Container) -> TesseraApp:
    settings = container.settings
    codecs: list[Any] = [TolerantJSONCodec(), CheckedBinaryCodec()]

    async def default_org_id() -> str:
        return await container.default_org_id()

    users = UserHandlers(container.users, container.authenticator, settings, container.machine_keys)
    orgs = OrgHandlers(container.orgs, container.authenticator, settings, default_org_id)
    sessions = SessionHandlers(container.sessions, container.authenticator, settings)
    settings_handlers = SettingsHandlers(container.authenticator, default_org_id)
    connect_apps = [
        SessionServiceASGIApplication(sessions, read_max_bytes=settings.max_body_bytes, codecs=codecs),
        UserServiceASGIApplication(users, read_max_bytes=settings.max_body_bytes, codecs=codecs),
        OrganizationServiceASGIApplication(orgs, read_max_bytes=settings.max_body_bytes, codecs=codecs),
        SettingsServiceASGIApplication(settings_handlers, read_max_bytes=settings.max_body_bytes, codecs=codecs),
    ]
    routes = (_user_routes(users) + _org_routes(orgs) + _session_routes(sessions)
              + _settings_routes(settings_handlers))
    rest = RestRouter(routes, settings.max_body_bytes)
    me = MeEndpoint(container.users, container.authenticator)
    background = []
    if settings.prune_interval_seconds > 0:
        background.append(lambda: prune_periodically(
            container.sessions, settings.prune_interval_seconds, settings.prune_retention_seconds))
    connect_apps += standard_services(connect_apps, container.db.ping)  # gRPC health and reflection
    return TesseraApp(connect_apps, rest, ready=container.db.ping, on_shutdown=container.close,
                      extra_routes={"/v2/users/me": me, "/auth/v1/users/me": me,
                                    **oauth_routes(container.db, container.access_tokens, container.signing_keys,
                                                   settings)},
                      background=background)


def build_asgi_app(container: Container) -> ASGIApp:
    """What the servers run: ``build_app`` behind gRPC-Web text decoding and, if configured, CORS."""
    settings = container.settings
    app: ASGIApp = GrpcAdapter(build_app(container), grpc_port=settings.effective_grpc_port)
    if settings.cors_origin_list:
        app = CORSMiddleware(app, settings.cors_origin_list)
    return app
