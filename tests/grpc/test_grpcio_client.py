"""The gRPC port as grpcio, the reference client, sees it: sessions, errors, auth, deadlines, health, reflection."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from protobuf import Oneof

from tessera.gen.grpc.health.v1 import health_pb
from tessera.gen.grpc.reflection.v1 import reflection_pb
from tessera.gen.zitadel.session.v2 import session_service_pb as session_pb

from ..conftest import ServerProcess
from .clients import PASSWORD, SESSION, WRONG_PASSWORD_ID, add_human, call, channel, frame, h2_post, rpc_error_ids

HEALTH = "grpc.health.v1.Health"
SERVING = health_pb.HealthCheckResponse.ServingStatus.SERVING
SERVICES = {"zitadel.session.v2.SessionService", "zitadel.user.v2.UserService",
            "zitadel.org.v2.OrganizationService", "zitadel.settings.v2.SettingsService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}


@pytest.fixture(scope="module")
def ch(server: ServerProcess) -> Iterator[grpc.Channel]:
    with channel(server) as opened:
        yield opened


def _password_checks(user_id: str, password: str) -> session_pb.CreateSessionRequest:
    return session_pb.CreateSessionRequest.from_json(
        f'{{"checks": {{"user": {{"userId": "{user_id}"}}, "password": {{"password": "{password}"}}}}}}')


def test_user_and_session_lifecycle(server: ServerProcess, ch: grpc.Channel) -> None:
    pat = server.admin_pat
    user_id, username = add_human(ch, pat)

    created = call(ch, SESSION, "CreateSession", _password_checks(user_id, PASSWORD),
                   session_pb.CreateSessionResponse, pat)
    assert created.session_id and created.session_token and created.details.sequence > 0

    got = call(ch, SESSION, "GetSession", session_pb.GetSessionRequest(session_id=created.session_id),
               session_pb.GetSessionResponse, pat).session
    assert got.id == created.session_id
    assert got.factors.user.id == user_id and got.factors.user.login_name.startswith(username)
    assert got.factors.password.verified_at is not None

    listed = call(ch, SESSION, "ListSessions", session_pb.ListSessionsRequest.from_json(
        f'{{"queries": [{{"idsQuery": {{"ids": ["{created.session_id}"]}}}}]}}'), session_pb.ListSessionsResponse, pat)
    assert [s.id for s in listed.sessions] == [created.session_id] and listed.details.total_result == 1

    updated = call(ch, SESSION, "SetSession", session_pb.SetSessionRequest(
        session_id=created.session_id, metadata={"device": b"grpcio"}), session_pb.SetSessionResponse, pat)
    assert updated.session_token and updated.session_token != created.session_token
    again = call(ch, SESSION, "GetSession", session_pb.GetSessionRequest(session_id=created.session_id),
                 session_pb.GetSessionResponse, pat).session
    assert again.metadata == {"device": b"grpcio"}

    # The session token is a bearer token too, sent as `authorization` metadata.
    own = call(ch, SESSION, "ListSessions", session_pb.ListSessionsRequest(), session_pb.ListSessionsResponse,
               updated.session_token)
    assert created.session_id in [s.id for s in own.sessions]

    call(ch, SESSION, "DeleteSession", session_pb.DeleteSessionRequest(session_id=created.session_id),
         session_pb.DeleteSessionResponse, pat)
    with pytest.raises(grpc.RpcError) as gone:
        call(ch, SESSION, "GetSession", session_pb.GetSessionRequest(session_id=created.session_id),
             session_pb.GetSessionResponse, pat)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_wrong_password_is_invalid_argument_with_its_error_id(server: ServerProcess, ch: grpc.Channel) -> None:
    user_id, _ = add_human(ch, server.admin_pat)
    with pytest.raises(grpc.RpcError) as refused:
        call(ch, SESSION, "CreateSession", _password_checks(user_id, "Wrong-passw0rd!"),
             session_pb.CreateSessionResponse, server.admin_pat)
    error = refused.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().endswith(f"({WRONG_PASSWORD_ID})")
    assert rpc_error_ids(error) == [WRONG_PASSWORD_ID]


@pytest.mark.parametrize("token", [None, "not-a-token", "Basic abc"])
def test_missing_or_bad_token_is_unauthenticated(server: ServerProcess, ch: grpc.Channel, token: str | None) -> None:
    metadata = [("authorization", token)] if token and token.startswith("Basic") else None
    with pytest.raises(grpc.RpcError) as refused:
        call(ch, SESSION, "ListSessions", session_pb.ListSessionsRequest(), session_pb.ListSessionsResponse,
             None if metadata else token, metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert rpc_error_ids(refused.value)


def test_grpc_timeout_header_is_honoured(server: ServerProcess) -> None:
    """A deadline that has passed when the server reads it ends the call with DEADLINE_EXCEEDED.

    Sent by hand over HTTP/2 so that the client cannot give up first: this is the server's answer.
    """
    headers = {"content-type": "application/grpc+proto", "te": "trailers", "grpc-timeout": "1n",
               "authorization": f"Bearer {server.admin_pat}"}
    body = frame(session_pb.ListSessionsRequest().to_binary())
    path = f"/{SESSION}/ListSessions"
    expired = h2_post(server.grpc_target, path, headers, body)
    assert expired.grpc_status == "4", expired
    assert expired.body == b""  # no response message
    in_time = h2_post(server.grpc_target, path, {**headers, "grpc-timeout": "10S"}, body)
    assert in_time.grpc_status == "0", in_time
    assert in_time.trailers["grpc-status"] == "0" and in_time.body[:1] == b"\x00"
    malformed = h2_post(server.grpc_target, path, {**headers, "grpc-timeout": "soon"}, body)
    assert malformed.grpc_status == "3", malformed


def test_health_check_list_and_watch(ch: grpc.Channel) -> None:
    request = health_pb.HealthCheckRequest
    for name in ("", "zitadel.session.v2.SessionService", HEALTH):
        answer = call(ch, HEALTH, "Check", request(service=name), health_pb.HealthCheckResponse, None)
        assert answer.status == SERVING, name
    with pytest.raises(grpc.RpcError) as unknown:
        call(ch, HEALTH, "Check", request(service="no.such.Service"), health_pb.HealthCheckResponse, None)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

    listed = call(ch, HEALTH, "List", health_pb.HealthListRequest(), health_pb.HealthListResponse, None)
    assert set(listed.statuses) == SERVICES | {""}
    assert {s.status for s in listed.statuses.values()} == {SERVING}

    watch = ch.unary_stream(f"/{HEALTH}/Watch", request_serializer=lambda m: m.to_binary(),
                            response_deserializer=health_pb.HealthCheckResponse.from_binary)
    stream = watch(request(service=""), timeout=15)
    assert next(stream).status == SERVING
    stream.cancel()
    stream = watch(request(service="no.such.Service"), timeout=15)
    assert next(stream).status == health_pb.HealthCheckResponse.ServingStatus.SERVICE_UNKNOWN
    stream.cancel()


def _reflect(ch: grpc.Channel,
             *requests: reflection_pb.ServerReflectionRequest) -> list[reflection_pb.ServerReflectionResponse]:
    info = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                            request_serializer=lambda m: m.to_binary(),
                            response_deserializer=reflection_pb.ServerReflectionResponse.from_binary)
    return list(info(iter(requests), timeout=15))


def test_reflection_v1_describes_every_service(ch: grpc.Channel) -> None:
    ask = reflection_pb.ServerReflectionRequest
    [listed] = _reflect(ch, ask(message_request=Oneof("list_services", "")))
    assert listed.message_response is not None
    names = {s.name for s in listed.message_response.value.service}
    assert names == SERVICES

    # One stream, as grpcurl does it: imports arrive once per stream; a pool built from the files
    # resolves every service, method and message.
    answers = _reflect(ch, *(ask(message_request=Oneof("file_containing_symbol", name)) for name in sorted(names)),
                       ask(message_request=Oneof("file_containing_symbol", "no.such.Symbol")))
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for answer in answers[:-1]:
        assert answer.message_response is not None and answer.message_response.field == "file_descriptor_response"
        for position, raw in enumerate(answer.message_response.value.file_descriptor_proto):
            file = descriptor_pb2.FileDescriptorProto.FromString(raw)
            # The asked-for file comes first, always; its imports only if not sent before.
            assert position == 0 or file.name not in files, f"import {file.name} sent twice on one stream"
            files[file.name] = file
    pool = descriptor_pool.DescriptorPool()
    while files:  # a pool takes a file once all its imports are in
        ready = [f for f in files.values() if all(d not in files for d in f.dependency)]
        assert ready, f"imports missing for {sorted(files)}"
        for file in ready:
            pool.Add(file)
            del files[file.name]
    for name in names:
        service = pool.FindServiceByName(name)
        assert service.methods
    create = pool.FindMethodByName("zitadel.session.v2.SessionService.CreateSession")
    assert create.input_type.full_name == "zitadel.session.v2.CreateSessionRequest"
    assert "checks" in create.input_type.fields_by_name

    missing = answers[-1].message_response
    assert missing is not None and missing.field == "error_response"
    assert missing.value.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_reflection_v1alpha_with_grpcios_reflection_client(ch: grpc.Channel) -> None:
    database = ProtoReflectionDescriptorDatabase(ch)
    assert set(database.get_services()) == SERVICES
    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName("zitadel.user.v2.UserService")
    assert "AddHumanUser" in service.methods_by_name
    message = pool.FindMessageTypeByName("zitadel.session.v2.Session")
    assert message.fields_by_name["factors"].message_type.full_name == "zitadel.session.v2.Factors"
