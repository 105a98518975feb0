"""User Service v2 RPCs for machine users' keys and client secret (AddKey, ListKeys, AddSecret…).

A mixin of UserHandlers: the methods convert wire messages to ``MachineKeys`` calls and back.
"""

from __future__ import annotations

from ..auth.authenticate import Authenticator
from ..auth.principal import Principal
from ..config import Settings
from ..errors import invalid_argument, unavailable
from ..gen.zitadel.filter.v2 import filter_pb
from ..gen.zitadel.user.v2 import key_pb
from ..gen.zitadel.user.v2 import user_service_pb as pb
from ..users.keys import KeyFilter, KeySort, MachineKeys, TimeComparison
from . import convert
from .rpc import rpc


def _required_id(value: str, what: str) -> str:
    if not value or len(value) > 200:
        raise invalid_argument("USER-iD1x", f"{what} must be 1 to 200 characters")
    return value


def _time_filter(value: filter_pb.TimestampFilter) -> tuple[TimeComparison, int]:
    at = convert.micros(value.timestamp)
    if at is None:
        raise invalid_argument("USER-kf1ts", "Timestamp filters need a timestamp")
    return convert.enum_value(TimeComparison, value.method or 0, "method"), at


def key_filter(filters: list[key_pb.KeysSearchFilter]) -> KeyFilter:
    key_ids: list[str] = []
    user_ids: list[str] = []
    org_ids: list[str] = []
    created: list[tuple[TimeComparison, int]] = []
    expires: list[tuple[TimeComparison, int]] = []
    for search in filters:
        if search.filter is None:
            raise invalid_argument("GRPC-Sfefs", "List.Query.Invalid")
        kind, value = search.filter.field, search.filter.value
        if kind == "key_id_filter":
            key_ids.append(value.id)
        elif kind == "user_id_filter":
            user_ids.append(value.id)
        elif kind == "organization_id_filter":
            org_ids.append(value.id)
        elif kind == "created_date_filter":
            created.append(_time_filter(value))
        else:
            expires.append(_time_filter(value))
    return KeyFilter(key_ids=tuple(key_ids), user_ids=tuple(user_ids), org_ids=tuple(org_ids),
                     created=tuple(created), expires=tuple(expires))


class MachineKeyHandlers:
    """AddKey, RemoveKey, ListKeys, AddSecret and RemoveSecret of zitadel.user.v2.UserService."""

    authenticator: Authenticator
    settings: Settings
    machine_keys: MachineKeys | None

    def _keys(self) -> MachineKeys:
        if self.machine_keys is None:
            raise unavailable("USER-Key00", "Machine keys are not configured")
        return self.machine_keys

    @rpc
    async def add_key(self, request: pb.AddKeyRequest, principal: Principal) -> pb.AddKeyResponse:
        key = await self._keys().add_key(principal, _required_id(request.user_id, "user_id"),
                                         convert.micros(request.expiration_date), request.public_key or None)
        return pb.AddKeyResponse(creation_date=convert.timestamp(key.created_at), key_id=key.key_id,
                                 key_content=key.key_content)

    @rpc
    async def remove_key(self, request: pb.RemoveKeyRequest, principal: Principal) -> pb.RemoveKeyResponse:
        details = await self._keys().remove_key(principal, _required_id(request.user_id, "user_id"),
                                                _required_id(request.key_id, "key_id"))
        return pb.RemoveKeyResponse(deletion_date=convert.timestamp(details.change_date))

    @rpc
    async def list_keys(self, request: pb.ListKeysRequest, principal: Principal) -> pb.ListKeysResponse:
        pagination = request.pagination or filter_pb.PaginationRequest()
        page = convert.page(pagination.offset, pagination.limit, pagination.asc,
                            default_limit=self.settings.default_query_limit,
                            max_limit=self.settings.max_query_limit)
        sort = convert.enum_value(KeySort, request.sorting_column or 0, "sorting_column")
        total, keys = await self._keys().list_keys(principal, key_filter(list(request.filters)), page, sort)
        return pb.ListKeysResponse(
            pagination=filter_pb.PaginationResponse(total_result=total, applied_limit=page.limit),
            result=[key_pb.Key(creation_date=convert.timestamp(k.created_at),
                               change_date=convert.timestamp(k.created_at), id=k.id, user_id=k.user_id,
                               organization_id=k.org_id, expiration_date=convert.timestamp(k.expires_at))
                    for k in keys])

    @rpc
    async def add_secret(self, request: pb.AddSecretRequest, principal: Principal) -> pb.AddSecretResponse:
        secret = await self._keys().add_secret(principal, _required_id(request.user_id, "user_id"))
        return pb.AddSecretResponse(creation_date=convert.timestamp(secret.created_at),
                                    client_secret=secret.secret)

    @rpc
    async def remove_secret(self, request: pb.RemoveSecretRequest, principal: Principal) -> pb.RemoveSecretResponse:
        details = await self._keys().remove_secret(principal, _required_id(request.user_id, "user_id"))
        return pb.RemoveSecretResponse(deletion_date=convert.timestamp(details.change_date))
