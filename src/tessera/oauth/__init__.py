"""OAuth 2.0 for service users: token, introspection, revocation, discovery and JWKS endpoints.

One module per specification: ``rfc7523`` (JWT assertions), ``rfc7662`` (introspection),
``rfc7009`` (revocation); ``token_endpoint`` holds the grants of RFC 6749 and RFC 7523.
"""
