"""zitadel.settings.v2.SettingsService: the instance settings a login needs.

Only GetGeneralSettings is served; the other settings calls answer unimplemented.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..auth import permissions as perm
from ..auth.authenticate import Authenticator
from ..auth.principal import Principal
from ..gen.zitadel.settings.v2 import settings_service_pb as pb
from ..gen.zitadel.settings.v2.settings_service_connect import SettingsService as SettingsServiceProtocol
from .rpc import rpc

# Every page and message Tessera renders is in English.
DEFAULT_LANGUAGE = "en"
SUPPORTED_LANGUAGES = (DEFAULT_LANGUAGE,)


class SettingsHandlers(SettingsServiceProtocol):  # type: ignore[misc]  # generated stubs are skipped, so Any
    def __init__(self, authenticator: Authenticator, default_org_id: Callable[[], Awaitable[str]]) -> None:
        self.authenticator = authenticator
        self._default_org_id = default_org_id

    @rpc
    async def get_general_settings(self, request: pb.GetGeneralSettingsRequest,
                                   principal: Principal) -> pb.GetGeneralSettingsResponse:
        principal.require(perm.POLICY_READ)
        return pb.GetGeneralSettingsResponse(default_org_id=await self._default_org_id(),
                                             default_language=DEFAULT_LANGUAGE,
                                             supported_languages=list(SUPPORTED_LANGUAGES))
