"""The OAuth HTTP endpoints: form parsing, JSON answers and RFC 6749 error rendering.

Requests are ``application/x-www-form-urlencoded`` POSTs (discovery and JWKS are GETs). Answers
are JSON with ``Cache-Control: no-store``; errors are ``{"error", "error_description"}`` with
400, or 401 for ``invalid_client`` (plus ``WWW-Authenticate: Basic`` when Basic was expected).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from ..config import Settings
from ..crypto.signing import SigningKeys
from ..oauth import discovery
from ..oauth.access_tokens import AccessTokens
from ..oauth.errors import OAuthError, invalid_request
from ..oauth.rfc7009 import RevocationEndpoint
from ..oauth.rfc7662 import IntrospectionEndpoint
from ..oauth.token_endpoint import TokenEndpoint
from ..store.db import Database
from .rest import Receive, Send

log = logging.getLogger("tessera.oauth")

ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]
FormHandler = Callable[[Mapping[str, str], str | None], Awaitable[dict[str, Any] | None]]

_MAX_FORM_BYTES = 65_536
_MAX_FIELDS = 32
_NO_STORE = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]


async def _send_json(send: Send, status: int, body: dict[str, Any],
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    raw = json.dumps(body, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": raw})


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}


async def _read_form(scope: dict[str, Any], receive: Receive) -> dict[str, str]:
    """The form fields of the body; each at most once (RFC 6749 section 3.2)."""
    content_type = _headers(scope).get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise invalid_request("the body must be application/x-www-form-urlencoded")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_FORM_BYTES:
            raise invalid_request("the request body is too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        pairs = parse_qsl(b"".join(chunks).decode("utf-8"), keep_blank_values=True, max_num_fields=_MAX_FIELDS,
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise invalid_request("the body is not a valid form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise invalid_request(f"{name} is given more than once")
        form[name] = value
    return form


def form_endpoint(handler: FormHandler) -> ASGIApp:
    """An ASGI app that POSTs a form to ``handler`` and renders its answer or OAuthError."""
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await _send_json(send, 405, invalid_request("use POST").body(), [(b"allow", b"POST")])
            return
        try:
            form = await _read_form(scope, receive)
            body = await handler(form, _headers(scope).get("authorization"))
        except OAuthError as error:
            headers = list(_NO_STORE)
            if error.basic_challenge:
                headers.append((b"www-authenticate", b'Basic realm="tessera"'))
            await _send_json(send, error.status, error.body(), headers)
            return
        except Exception:
            log.exception("unexpected error in an OAuth endpoint")
            await _send_json(send, 500, {"error": "server_error", "error_description": "internal error"},
                             list(_NO_STORE))
            return
        await _send_json(send, 200, body if body is not None else {}, list(_NO_STORE))
    return app


def json_endpoint(produce: Callable[[], Awaitable[dict[str, Any]]]) -> ASGIApp:
    """An ASGI app answering GET with ``produce()``'s document."""
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["method"] != "GET":
            await _send_json(send, 405, invalid_request("use GET").body(), [(b"allow", b"GET")])
            return
        try:
            document = await produce()
        except Exception:
            log.exception("unexpected error in an OAuth endpoint")
            await _send_json(send, 500, {"error": "server_error", "error_description": "internal error"})
            return
        await _send_json(send, 200, document)
    return app


def oauth_routes(db: Database, access_tokens: AccessTokens, signing: SigningKeys,
                 settings: Settings) -> dict[str, ASGIApp]:
    """Exact paths of the OAuth endpoints, for ``TesseraApp(extra_routes=…)``."""
    issuer = settings.issuer
    token = TokenEndpoint(db, access_tokens, issuer, issuer + discovery.TOKEN_PATH)
    introspection = IntrospectionEndpoint(db, access_tokens, issuer, issuer + discovery.INTROSPECTION_PATH)
    revocation = RevocationEndpoint(db, access_tokens, issuer, issuer + discovery.REVOCATION_PATH)
    configuration = discovery.openid_configuration(issuer)

    async def revoke(form: Mapping[str, str], authorization: str | None) -> None:
        await revocation.handle(form, authorization)

    async def document() -> dict[str, Any]:
        return configuration

    async def jwks() -> dict[str, Any]:
        await signing.ensure_current()  # publish a key before the first JWT is issued
        return await signing.jwks()

    return {
        discovery.DISCOVERY_PATH: json_endpoint(document),
        discovery.JWKS_PATH: json_endpoint(jwks),
        discovery.TOKEN_PATH: form_endpoint(token.handle),
        discovery.INTROSPECTION_PATH: form_endpoint(introspection.handle),
        discovery.REVOCATION_PATH: form_endpoint(revoke),
    }
