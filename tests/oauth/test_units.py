"""In-process tests: signing key rotation and publication windows, assertion parsing, scope filtering."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tessera.crypto.sealing import Sealer
from tessera.crypto.signing import SigningKeys
from tessera.oauth import rfc7523
from tessera.oauth.token_endpoint import granted_scopes
from tessera.store import migrate
from tessera.store.db import Database


def test_signing_keys_rotate_and_stop_being_published(database_url: str) -> None:
    db = Database(database_url)
    try:
        migrate.upgrade(db)
        lifetime = 4_000_000  # the checks between a rotation and the sleep below must finish within it
        keys = SigningKeys(db, Sealer(secrets.token_bytes(32)), token_lifetime_us=lifetime)

        async def scenario() -> None:
            await keys.ensure_current()
            await SigningKeys(db, keys.sealer, lifetime).ensure_current()  # another process: no second key
            first = await keys.jwks()
            assert len(first["keys"]) == 1
            token = await db.write(lambda conn: keys.sign(conn, {"sub": "x", "exp": int(time.time()) + 60}))
            assert jwt.decode(token, KeySet.import_key_set(first), algorithms=["RS256"]).claims["sub"] == "x"

            new_kid, retired = await keys.rotate()
            assert retired == [first["keys"][0]["kid"]]
            published = [k["kid"] for k in (await keys.jwks())["keys"]]
            assert published == [new_kid, retired[0]]
            assert {k["kid"]: k["state"] for k in await keys.describe()} == {new_kid: "signing",
                                                                          retired[0]: "retired"}
            resigned = await db.write(lambda conn: keys.sign(conn, {"sub": "y"}))
            assert jwt.decode(resigned, KeySet.import_key_set(await keys.jwks()),
                              algorithms=["RS256"]).header["kid"] == new_kid

            await asyncio.sleep(lifetime / 1_000_000 + 0.2)  # the retired key's tokens have all expired
            assert [k["kid"] for k in (await keys.jwks())["keys"]] == [new_kid]
            assert await db.read(lambda conn: keys.verification_key(conn, "unknown", 0)) is None
            newest, retired_again = await keys.rotate()
            assert retired_again == [new_kid]
            assert [k["kid"] for k in (await keys.jwks())["keys"]] == [newest, new_kid]

        asyncio.run(scenario())
    finally:
        db.dispose()


def test_private_keys_are_sealed_at_rest(database_url: str) -> None:
    from sqlalchemy import select

    from tessera.store.schema import signing_keys

    db = Database(database_url)
    try:
        migrate.upgrade(db)
        keys = SigningKeys(db, Sealer(secrets.token_bytes(32)), token_lifetime_us=1_000_000)
        asyncio.run(keys.ensure_current())
        stored = db.run_sync(lambda conn: conn.execute(select(signing_keys.c.private_key)).scalar_one())
        assert "PRIVATE KEY" not in stored and stored.startswith("v1:")
    finally:
        db.dispose()


def test_peek_reads_kid_and_iss_without_trusting_them() -> None:
    key = RSAKey.generate_key(2048)
    token = jwt.encode({"alg": "RS256", "kid": "k1"}, {"iss": "u1"}, key, algorithms=["RS256"])
    peeked = rfc7523.peek(token)
    assert (peeked.key_id, peeked.issuer) == ("k1", "u1")
    for bad in ["", "a.b", "a..c", "e30.e30.", "bm90LWpzb24.e30.c2ln", "W10.e30.c2ln", "x" * 20_000]:
        with pytest.raises(rfc7523.InvalidAssertion):
            rfc7523.peek(bad)
    no_kid = jwt.encode({"alg": "RS256"}, {"iss": "u1"}, key, algorithms=["RS256"])
    with pytest.raises(rfc7523.InvalidAssertion, match="kid"):
        rfc7523.peek(no_kid)


def test_verify_checks_times_with_one_second_of_leeway() -> None:
    key = RSAKey.generate_key(2048)
    public = key.as_pem(private=False).decode()
    now = 1_800_000_000

    def check(**claims: object) -> rfc7523.Assertion:
        body = {"iss": "u", "sub": "u", "aud": "https://issuer", "iat": now, "exp": now + 3600, **claims}
        token = jwt.encode({"alg": "RS256", "kid": "k"}, body, key, algorithms=["RS256"])
        return rfc7523.verify(rfc7523.peek(token), public, {"https://issuer"}, float(now))

    assert check().replay_window_ends == now + 3600 + 2
    assert check(iat=now + 1).subject == "u"  # within the leeway
    assert check(exp=now - 1).key_id == "k"
    assert check(iat=now - 3601, exp=now + 10).replay_window_ends == now + 1  # iat + 1 h rules
    for claims in ({"iat": now + 2}, {"exp": now - 2}, {"iat": now - 3602}, {"exp": True}, {"iat": "now"},
                   {"nbf": now + 5}, {"jti": 7}, {"jti": ""}):
        with pytest.raises(rfc7523.InvalidAssertion):
            check(**claims)


def test_scopes_keep_known_ones_in_request_order() -> None:
    assert granted_scopes("urn:zitadel:iam:org:project:id:zitadel:aud openid") == (
        "urn:zitadel:iam:org:project:id:zitadel:aud", "openid")
    assert granted_scopes("openid openid offline_access admin profile") == ("openid", "profile")
    assert granted_scopes("") == ()
