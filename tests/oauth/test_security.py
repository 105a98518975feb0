"""Bad JWT assertions: each is refused with invalid_grant and no token is issued."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import create_engine, update

from tessera.store.schema import machine_keys

from ..conftest import ServerProcess
from .support import (
    ServiceUser,
    add_key_file,
    assertion_from_file,
    b64url,
    claims_for,
    jwt_grant,
    service_user,
    sign,
    token_count,
    user_call,
)


def assert_rejected(server: ServerProcess, user_id: str, assertion: str, reason: str = "") -> None:
    before = token_count(server, user_id)
    response = jwt_grant(server, assertion)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_grant", body
    if reason:
        assert reason in body["error_description"], body
    assert "access_token" not in body
    assert token_count(server, user_id) == before


@pytest.fixture
def user(server: ServerProcess, tmp_path: Path) -> ServiceUser:
    return service_user(server, tmp_path)


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"


def test_a_good_assertion_is_accepted_in_every_shape(server: ServerProcess, user: ServiceUser) -> None:
    """The baseline the rejections below differ from: SDK shape, list audience, scope order, extras."""
    assert jwt_grant(server, assertion_from_file(server, user.key_file)).status_code == 200
    listed_aud = assertion_from_file(server, user.key_file, aud=["https://other.example", server.url])
    assert jwt_grant(server, listed_aud).status_code == 200
    reordered = jwt_grant(server, assertion_from_file(server, user.key_file),
                          scope="urn:zitadel:iam:org:project:id:zitadel:aud openid")
    assert reordered.status_code == 200
    assert reordered.json()["scope"] == "urn:zitadel:iam:org:project:id:zitadel:aud openid"
    with_jti = assertion_from_file(server, user.key_file, jti=uuid.uuid4().hex, nbf=int(time.time()))
    answer = jwt_grant(server, with_jti, scope="openid unknown-scope")
    assert answer.status_code == 200
    assert answer.json() == {"access_token": answer.json()["access_token"], "token_type": "Bearer",
                             "expires_in": 43200, "scope": "openid"}
    assert answer.headers["cache-control"] == "no-store"


def test_alg_none_is_refused(server: ServerProcess, user: ServiceUser) -> None:
    claims = claims_for(server, user.id)
    for alg in ("none", "None", "NONE"):
        token = unsigned({"alg": alg, "typ": "JWT", "kid": user.key_file["keyId"]}, claims)
        assert_rejected(server, user.id, token + ".")
        assert_rejected(server, user.id, token + "." + b64url(b"x"))


def test_hmac_with_the_public_key_as_secret_is_refused(server: ServerProcess, user: ServiceUser) -> None:
    """The classic algorithm confusion: HS256 keyed with the (public) verification key."""
    public = RSAKey.import_key(user.key_file["key"]).public_key
    forms = [
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
    ]
    for alg, digest in (("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)):
        for secret in forms:
            signing_input = unsigned({"alg": alg, "typ": "JWT", "kid": user.key_file["keyId"]},
                                     claims_for(server, user.id))
            signature = hmac.new(secret, signing_input.encode(), digest).digest()
            assert_rejected(server, user.id, f"{signing_input}.{b64url(signature)}", "signature")


def test_unknown_or_missing_kid_is_refused(server: ServerProcess, user: ServiceUser) -> None:
    claims = claims_for(server, user.id)
    assert_rejected(server, user.id, sign(user.key_file["key"], claims, kid="123456789"), "key")
    assert_rejected(server, user.id, sign(user.key_file["key"], claims, kid=None), "kid")
    assert_rejected(server, user.id, sign(user.key_file["key"], claims, kid=""), "kid")


def test_another_users_key_is_refused(server: ServerProcess, user: ServiceUser, tmp_path: Path) -> None:
    other = service_user(server, tmp_path)
    # other's key ID and private key, claiming to be user: no such key for user
    as_user = sign(other.key_file["key"], claims_for(server, user.id), kid=other.key_file["keyId"])
    assert_rejected(server, user.id, as_user, "key")
    # user's key ID, signed with other's private key: the signature does not verify
    forged = sign(other.key_file["key"], claims_for(server, user.id), kid=user.key_file["keyId"])
    assert_rejected(server, user.id, forged, "signature")
    # a fresh key nobody registered
    stranger = RSAKey.generate_key(2048)
    assert_rejected(server, user.id, sign(stranger, claims_for(server, user.id), kid=user.key_file["keyId"]))


def test_subject_must_equal_issuer(server: ServerProcess, user: ServiceUser, tmp_path: Path) -> None:
    other = service_user(server, tmp_path)
    assertion = assertion_from_file(server, user.key_file, sub=other.id)
    assert_rejected(server, user.id, assertion, "sub")
    assert token_count(server, other.id) == 0


@pytest.mark.parametrize("audience", ["https://evil.example", "http://127.0.0.1", ["https://evil.example"], [], 42,
                                      "http://127.0.0.1:1/oauth/v2/token"])
def test_wrong_audience_is_refused(server: ServerProcess, user: ServiceUser, audience: Any) -> None:
    assert_rejected(server, user.id, assertion_from_file(server, user.key_file, aud=audience), "aud")


def test_missing_audience_is_refused(server: ServerProcess, user: ServiceUser) -> None:
    claims = claims_for(server, user.id)
    del claims["aud"]
    assert_rejected(server, user.id, sign(user.key_file["key"], claims, kid=user.key_file["keyId"]), "aud")


def test_expired_or_missing_exp_is_refused(server: ServerProcess, user: ServiceUser) -> None:
    now = int(time.time())
    assert_rejected(server, user.id, assertion_from_file(server, user.key_file, iat=now - 100, exp=now - 10),
                    "expired")
    claims = claims_for(server, user.id)
    del claims["exp"]
    assert_rejected(server, user.id, sign(user.key_file["key"], claims, kid=user.key_file["keyId"]), "exp")
    assert_rejected(server, user.id, assertion_from_file(server, user.key_file, exp="tomorrow"), "exp")


def test_iat_in_the_future_or_older_than_an_hour_is_refused(server: ServerProcess, user: ServiceUser) -> None:
    now = int(time.time())
    assert_rejected(server, user.id, assertion_from_file(server, user.key_file, iat=now + 120, exp=now + 3600),
                    "future")
    assert_rejected(server, user.id, assertion_from_file(server, user.key_file, iat=now - 3700, exp=now + 600),
                    "older")
    claims = claims_for(server, user.id)
    del claims["iat"]
    assert_rejected(server, user.id, sign(user.key_file["key"], claims, kid=user.key_file["keyId"]), "iat")
    assert_rejected(server, user.id, assertion_from_file(server, user.key_file, nbf=now + 600), "nbf")


def test_a_replayed_jti_is_refused(server: ServerProcess, user: ServiceUser) -> None:
    jti = uuid.uuid4().hex
    assertion = assertion_from_file(server, user.key_file, jti=jti)
    assert jwt_grant(server, assertion).status_code == 200
    assert_rejected(server, user.id, assertion, "already used")
    # A new assertion reusing the ID is a replay too; another user may use the same ID.
    assert_rejected(server, user.id, assertion_from_file(server, user.key_file, jti=jti, iat=int(time.time()) - 5),
                    "already used")
    assert jwt_grant(server, assertion_from_file(server, user.key_file, jti=uuid.uuid4().hex)).status_code == 200


def test_a_jti_raced_in_parallel_is_accepted_once(server: ServerProcess, user: ServiceUser) -> None:
    assertion = assertion_from_file(server, user.key_file, jti=uuid.uuid4().hex)
    before = token_count(server, user.id)
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda _: jwt_grant(server, assertion), range(12)))
    assert sorted(a.status_code for a in answers) == [200] + [400] * 11
    assert {a.json()["error"] for a in answers if a.status_code == 400} == {"invalid_grant"}
    assert token_count(server, user.id) == before + 1


def test_a_removed_key_is_refused_and_its_tokens_stop(server: ServerProcess, user: ServiceUser) -> None:
    granted = jwt_grant(server, assertion_from_file(server, user.key_file))
    token = granted.json()["access_token"]
    assert user_call(server, "GetUserByID", {"userId": user.id}, token).status_code == 200

    removed = user_call(server, "RemoveKey", {"userId": user.id, "keyId": user.key_file["keyId"]})
    assert removed.status_code == 200, removed.text
    assert_rejected(server, user.id, assertion_from_file(server, user.key_file), "key")
    assert user_call(server, "GetUserByID", {"userId": user.id}, token).status_code == 401


def test_an_expired_key_is_refused(server: ServerProcess, user: ServiceUser, tmp_path: Path) -> None:
    expiry = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    _, short_lived = add_key_file(server, user.id, tmp_path, expirationDate=expiry)
    assert jwt_grant(server, assertion_from_file(server, short_lived)).status_code == 200
    # Let the hour pass: move the stored expiry into the past (waiting for a real expiry is flaky under load).
    engine = create_engine(server.database_url or f"sqlite:///{server.data_dir / 'tessera.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(update(machine_keys).where(machine_keys.c.id == short_lived["keyId"])
                         .values(expires_at=(int(time.time()) - 1) * 1_000_000))
    finally:
        engine.dispose()
    assert_rejected(server, user.id, assertion_from_file(server, short_lived), "expired")
    assert jwt_grant(server, assertion_from_file(server, user.key_file)).status_code == 200


@pytest.mark.parametrize(("stop", "restart"), [("LockUser", "UnlockUser"), ("DeactivateUser", "ReactivateUser")])
def test_a_locked_or_deactivated_user_is_refused(server: ServerProcess, user: ServiceUser, stop: str,
                                                 restart: str) -> None:
    token = jwt_grant(server, assertion_from_file(server, user.key_file)).json()["access_token"]
    assert user_call(server, stop, {"userId": user.id}).status_code == 200
    assert_rejected(server, user.id, assertion_from_file(server, user.key_file), "not active")
    assert user_call(server, "GetUserByID", {"userId": user.id}, token).status_code == 401
    assert user_call(server, restart, {"userId": user.id}).status_code == 200
    assert user_call(server, "GetUserByID", {"userId": user.id}, token).status_code == 200
    assert jwt_grant(server, assertion_from_file(server, user.key_file)).status_code == 200


def test_a_deleted_user_is_refused(server: ServerProcess, user: ServiceUser) -> None:
    token = jwt_grant(server, assertion_from_file(server, user.key_file)).json()["access_token"]
    assert user_call(server, "DeleteUser", {"userId": user.id}).status_code == 200
    response = jwt_grant(server, assertion_from_file(server, user.key_file))
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert user_call(server, "GetUserByID", {"userId": user.id}, token).status_code == 401


Mangle = Callable[[str], str]


@pytest.mark.parametrize("mangle", [
    lambda a: a + "x",
    lambda a: a.rsplit(".", 1)[0],
    lambda a: "not-a-jwt",
    lambda a: "a.b.c",
    lambda a: "x" * 20_000,
    lambda a: a.replace(".", ".e30", 1),
], ids=["trailing-garbage", "no-signature", "not-a-jwt", "bad-base64", "huge", "corrupt-payload"])
def test_malformed_assertions_are_refused(server: ServerProcess, user: ServiceUser, mangle: Mangle) -> None:
    assert_rejected(server, user.id, mangle(assertion_from_file(server, user.key_file)))


def test_an_ec_public_key_registered_by_the_caller(server: ServerProcess, user: ServiceUser) -> None:
    """ES256 with the caller's own key; AddKey then returns no key content (nothing secret to hand out)."""
    private = ECKey.generate_key("P-256")
    pem = private.as_pem(private=False)
    added = user_call(server, "AddKey", {"userId": user.id, "publicKey": base64.b64encode(pem).decode()})
    assert added.status_code == 200, added.text
    assert not added.json().get("keyContent")
    key_id = added.json()["keyId"]
    good = sign(private, claims_for(server, user.id), kid=key_id, alg="ES256")
    response = jwt_grant(server, good)
    assert response.status_code == 200, response.text
    assert user_call(server, "GetUserByID", {"userId": user.id}, response.json()["access_token"]).status_code == 200
    # The EC key verifies ES256 only: an RS256 header naming it fails.
    rsa_signed = sign(user.key_file["key"], claims_for(server, user.id), kid=key_id)
    assert_rejected(server, user.id, rsa_signed, "signature")


def test_rejections_leave_no_trace_of_secrets(server: ServerProcess, user: ServiceUser) -> None:
    assertion = assertion_from_file(server, user.key_file, aud="https://evil.example")
    response = jwt_grant(server, assertion)
    assert assertion not in response.text and user.key_file["key"] not in server.log()
    assert assertion not in server.log()
