"""User Service AddKey / RemoveKey / ListKeys / AddSecret / RemoveSecret over the SDK, Connect and REST."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import zitadel_client
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from zitadel_client.exceptions import ApiError
from zitadel_client.models import (
    UserServiceAddKeyRequest,
    UserServiceAddSecretRequest,
    UserServiceIDFilter,
    UserServiceKeyFieldName,
    UserServiceKeysSearchFilter,
    UserServiceListKeysRequest,
    UserServicePaginationRequest,
    UserServiceRemoveKeyRequest,
    UserServiceRemoveSecretRequest,
    UserServiceTimestampFilter,
    UserServiceTimestampFilterMethod,
)

from ..conftest import ServerProcess
from ..helpers import add_human
from .support import add_machine, assertion_from_file, bearer, jwt_grant, service_user, user_call


def test_keys_and_secrets_through_the_sdk(server: ServerProcess, sdk: Any, tmp_path: Path) -> None:
    machine = add_machine(server)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    added = sdk.users.add_key(UserServiceAddKeyRequest(user_id=machine["id"], expiration_date=expires))
    assert added.key_id and added.creation_date is not None
    key_file = json.loads(base64.b64decode(added.key_content))
    assert key_file["keyId"] == added.key_id and key_file["userId"] == machine["id"]
    assert key_file["expirationDate"].startswith(expires.strftime("%Y-%m-%dT%H:%M:%S"))
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key_file))
    assert zitadel_client.Zitadel.with_private_key(server.url, str(path)).users.list_keys(
        UserServiceListKeysRequest()) is not None

    second = sdk.users.add_key(UserServiceAddKeyRequest(user_id=machine["id"]))
    listed = sdk.users.list_keys(UserServiceListKeysRequest(filters=[UserServiceKeysSearchFilter(
        user_id_filter=UserServiceIDFilter(id=machine["id"]))]))
    assert int(listed.pagination.total_result) == 2
    by_id = {k.id: k for k in listed.result}
    assert set(by_id) == {added.key_id, second.key_id}
    assert by_id[added.key_id].expiration_date == expires
    assert by_id[second.key_id].expiration_date == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert by_id[added.key_id].user_id == machine["id"] and by_id[added.key_id].organization_id

    removed = sdk.users.remove_key(UserServiceRemoveKeyRequest(user_id=machine["id"], key_id=added.key_id))
    assert removed.deletion_date is not None
    with pytest.raises(ApiError) as again:
        sdk.users.remove_key(UserServiceRemoveKeyRequest(user_id=machine["id"], key_id=added.key_id))
    assert again.value.code == 404

    secret = sdk.users.add_secret(UserServiceAddSecretRequest(user_id=machine["id"]))
    assert len(secret.client_secret) >= 40 and secret.creation_date is not None
    assert sdk.users.remove_secret(UserServiceRemoveSecretRequest(user_id=machine["id"])).deletion_date


def test_list_keys_filters_sorting_and_paging(server: ServerProcess, sdk: Any) -> None:
    machine = add_machine(server)
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    later = soon + timedelta(days=1)
    ids = [sdk.users.add_key(UserServiceAddKeyRequest(user_id=machine["id"], expiration_date=at)).key_id
           for at in (later, soon, None)]
    mine = UserServiceKeysSearchFilter(user_id_filter=UserServiceIDFilter(id=machine["id"]))

    def listing(**kwargs: Any) -> Any:
        return sdk.users.list_keys(UserServiceListKeysRequest(**kwargs))

    by_expiry = listing(filters=[mine], sorting_column=UserServiceKeyFieldName.KEY_FIELD_NAME_KEY_EXPIRATION_DATE,
                        pagination=UserServicePaginationRequest(asc=True))
    assert [k.id for k in by_expiry.result] == [ids[1], ids[0], ids[2]]
    page = listing(filters=[mine], pagination=UserServicePaginationRequest(asc=True, limit=2, offset=1))
    assert int(page.pagination.total_result) == 3 and [k.id for k in page.result] == ids[1:]
    before = listing(filters=[mine, UserServiceKeysSearchFilter(expiration_date_filter=UserServiceTimestampFilter(
        timestamp=later, method=UserServiceTimestampFilterMethod.TIMESTAMP_FILTER_METHOD_BEFORE))])
    assert [k.id for k in before.result] == [ids[1]]
    one = listing(filters=[UserServiceKeysSearchFilter(key_id_filter=UserServiceIDFilter(id=ids[0]))])
    assert [k.id for k in one.result] == [ids[0]]


def test_add_key_refusals(server: ServerProcess) -> None:
    machine = add_machine(server)
    human = add_human(server)

    def add(body: dict[str, Any]) -> httpx.Response:
        return user_call(server, "AddKey", body)

    refused = add({"userId": human["id"]})
    assert refused.status_code == 400 and refused.json()["code"] == "failed_precondition"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert add({"userId": machine["id"], "expirationDate": past}).status_code == 400
    assert add({"userId": "no-such-user"}).status_code == 404
    garbage = base64.b64encode(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n").decode()
    assert add({"userId": machine["id"], "publicKey": garbage}).json()["code"] == "invalid_argument"
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    small_pem = small.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert add({"userId": machine["id"], "publicKey": base64.b64encode(small_pem).decode()}).status_code == 400
    odd_curve = ec.generate_private_key(ec.SECP256K1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert add({"userId": machine["id"], "publicKey": base64.b64encode(odd_curve).decode()}).status_code == 400
    nothing = user_call(server, "ListKeys", {"filters": [{"userIdFilter": {"id": machine["id"]}}]}).json()
    assert nothing["pagination"].get("totalResult", "0") == "0" and not nothing.get("result")


def test_a_registered_rsa_public_key_signs_in(server: ServerProcess) -> None:
    machine = add_machine(server)
    private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.PKCS1)  # PKCS#1 works too
    added = user_call(server, "AddKey", {"userId": machine["id"],
                                         "publicKey": base64.b64encode(public_pem).decode()})
    assert added.status_code == 200, added.text
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    key_file = {"keyId": added.json()["keyId"], "userId": machine["id"], "key": private_pem}
    assert jwt_grant(server, assertion_from_file(server, key_file)).status_code == 200


def test_permissions(server: ServerProcess, tmp_path: Path) -> None:
    """A service user without roles manages no one's keys, and lists only its own."""
    user = service_user(server, tmp_path)
    other = service_user(server, tmp_path)
    token = jwt_grant(server, assertion_from_file(server, user.key_file)).json()["access_token"]
    for method, body in [("AddKey", {"userId": other.id}), ("AddSecret", {"userId": other.id}),
                         ("RemoveKey", {"userId": other.id, "keyId": other.key_file["keyId"]}),
                         ("RemoveSecret", {"userId": other.id}), ("AddKey", {"userId": user.id})]:
        response = user_call(server, method, body, token)
        assert response.status_code == 403, (method, response.text)
    listed = user_call(server, "ListKeys", {}, token).json()
    assert [k["userId"] for k in listed["result"]] == [user.id]
    assert user_call(server, "ListKeys", {}, "tpat_invalid").status_code == 401


def test_rest_routes(server: ServerProcess) -> None:
    machine = add_machine(server)
    headers = bearer(server.admin_pat)
    base = f"{server.url}/v2/users"
    added = httpx.post(f"{base}/{machine['id']}/keys", json={}, headers=headers, timeout=30)
    assert added.status_code == 200, added.text
    key_id = added.json()["keyId"]
    assert json.loads(base64.b64decode(added.json()["keyContent"]))["keyId"] == key_id
    found = httpx.post(f"{base}/keys/search", json={"filters": [{"keyIdFilter": {"id": key_id}}]},
                       headers=headers, timeout=30)
    assert [k["id"] for k in found.json()["result"]] == [key_id]
    assert httpx.delete(f"{base}/{machine['id']}/keys/{key_id}", headers=headers, timeout=30).status_code == 200
    secret = httpx.post(f"{base}/{machine['id']}/secret", json={}, headers=headers, timeout=30)
    assert secret.status_code == 200 and secret.json()["clientSecret"]
    assert httpx.delete(f"{base}/{machine['id']}/secret", headers=headers, timeout=30).status_code == 200
    missing = httpx.delete(f"{base}/{machine['id']}/secret", headers=headers, timeout=30)
    assert missing.status_code == 404 and missing.json()["code"] == 5


def test_the_private_key_is_not_kept(server: ServerProcess) -> None:
    """Only the public key is stored: the key file's private key appears nowhere in the database."""
    from sqlalchemy import create_engine, text

    machine = add_machine(server)
    added = user_call(server, "AddKey", {"userId": machine["id"]}).json()
    private = json.loads(base64.b64decode(added["keyContent"]))["key"]
    body = private.split("-----")[2].strip().splitlines()[1]
    url = server.database_url or f"sqlite:///{server.data_dir / 'tessera.db'}"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT public_key FROM machine_keys WHERE id = :id"),
                                  {"id": added["keyId"]}).scalar_one()
            events = " ".join(str(r[0]) for r in conn.execute(text("SELECT payload FROM events")))
    finally:
        engine.dispose()
    assert stored.startswith("-----BEGIN PUBLIC KEY-----") and body not in stored and body not in events
