"""How the gRPC listener is run: health without a database, TLS, several workers, turned off."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import time
from pathlib import Path

import grpc
import httpx
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tessera.gen.grpc.health.v1 import health_pb
from tessera.gen.zitadel.session.v2 import session_service_pb as session_pb

from ..conftest import PG_ADMIN_DSN, running_server
from .clients import SESSION, call, channel

HEALTH = "grpc.health.v1.Health"
Status = health_pb.HealthCheckResponse.ServingStatus


def _check(ch: grpc.Channel) -> object:
    return call(ch, HEALTH, "Check", health_pb.HealthCheckRequest(), health_pb.HealthCheckResponse, None).status


def test_health_is_not_serving_while_the_database_is_gone(tmp_path: Path) -> None:
    with running_server(tmp_path, "postgres") as server, channel(server) as ch:
        assert _check(ch) == Status.SERVING
        watch = ch.unary_stream(f"/{HEALTH}/Watch", request_serializer=lambda m: m.to_binary(),
                                response_deserializer=health_pb.HealthCheckResponse.from_binary)
        stream = watch(health_pb.HealthCheckRequest(), timeout=30)
        assert next(stream).status == Status.SERVING

        database = server.database_url.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')

        assert next(stream).status == Status.NOT_SERVING  # Watch reports the change by itself
        stream.cancel()
        assert _check(ch) == Status.NOT_SERVING
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 503


def _self_signed(directory: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path = directory / "grpc.crt", directory / "grpc.key"
    cert_path.write_bytes(pem)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path, pem


def test_grpc_over_tls_when_a_certificate_is_configured(tmp_path: Path) -> None:
    cert, key, pem = _self_signed(tmp_path)
    env = {"TESSERA_GRPC_TLS_CERT": str(cert), "TESSERA_GRPC_TLS_KEY": str(key)}
    with running_server(tmp_path, "sqlite", extra_env=env) as server:
        credentials = grpc.ssl_channel_credentials(root_certificates=pem)
        with grpc.secure_channel(server.grpc_target, credentials) as ch:
            assert _check(ch) == Status.SERVING
            listed = call(ch, SESSION, "ListSessions", session_pb.ListSessionsRequest(),
                          session_pb.ListSessionsResponse, server.admin_pat)
            assert listed.details.total_result == 0
        with channel(server) as cleartext, pytest.raises(grpc.RpcError) as refused:
            call(cleartext, HEALTH, "Check", health_pb.HealthCheckRequest(), health_pb.HealthCheckResponse, None,
                 timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_missing_certificate_stops_the_start(tmp_path: Path) -> None:
    env = {"TESSERA_GRPC_TLS_CERT": str(tmp_path / "none.crt"), "TESSERA_GRPC_TLS_KEY": str(tmp_path / "none.key")}
    with pytest.raises(RuntimeError, match="grpc_tls_cert"), running_server(tmp_path, "sqlite", extra_env=env):
        pass


def test_every_worker_serves_grpc_and_http(tmp_path: Path) -> None:
    with running_server(tmp_path, "postgres", extra_args=["--workers", "2"]) as server, channel(server) as ch:
        for _ in range(10):
            # New connections each round, so both workers get some.
            with channel(server) as fresh:
                assert _check(fresh) == Status.SERVING
            assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        listed = call(ch, SESSION, "ListSessions", session_pb.ListSessionsRequest(), session_pb.ListSessionsResponse,
                      server.admin_pat)
        assert listed.details.total_result == 0
        process = server.process
        assert process is not None
    assert process.returncode == 0, server.log()  # SIGTERM stops the workers and the parent cleanly


def test_grpc_port_zero_turns_the_listener_off(tmp_path: Path) -> None:
    with running_server(tmp_path, "sqlite", extra_env={"TESSERA_GRPC_PORT": "0"}) as server:
        with socket.socket() as probe:
            probe.settimeout(2)
            assert probe.connect_ex(("127.0.0.1", server.grpc_port)) != 0
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_sigterm_drains_and_exits_cleanly(tmp_path: Path) -> None:
    with running_server(tmp_path, "sqlite") as server, channel(server) as ch:
        assert _check(ch) == Status.SERVING
        process = server.process
        assert process is not None
        started = time.monotonic()
        server.stop()
        assert process.returncode == 0, server.log()
        assert time.monotonic() - started < 10
