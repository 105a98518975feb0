"""Asymmetric keys for JWTs: machine users' keys and the instance's signing keys.

A machine key is stored as its public half only (PEM, SubjectPublicKeyInfo). Generated key
pairs use PKCS#1 PEM for the private half, as ZITADEL's key files do. Each key type verifies
only the JWS algorithms of its own family, so an HMAC or ``none`` header can never select a key.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, RSAKey

MIN_RSA_BITS = 2048
_RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_EC_ALGORITHMS = {"secp256r1": ("ES256",), "secp384r1": ("ES384",), "secp521r1": ("ES512",)}

PublicJwk = RSAKey | ECKey


class UnsupportedKey(ValueError):
    """A public key Tessera does not accept (wrong type, curve or size, or not a key at all)."""


def generate_rsa_key_pair(bits: int = 2048) -> tuple[str, str]:
    """A new RSA key pair: (private key in PKCS#1 PEM, public key in SubjectPublicKeyInfo PEM)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption()).decode()
    return private_pem, public_pem_of(private.public_key())


def public_pem_of(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def normalize_public_key(data: bytes) -> str:
    """Check a caller's public key (PEM or DER) and return it as SubjectPublicKeyInfo PEM."""
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_public_key(data.strip())
        else:
            key = serialization.load_der_public_key(data)
    except (ValueError, TypeError) as exc:
        raise UnsupportedKey("public key is not a PEM or DER encoded public key") from exc
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise UnsupportedKey(f"RSA keys must have at least {MIN_RSA_BITS} bits")
        return public_pem_of(key)
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _EC_ALGORITHMS:
            raise UnsupportedKey("EC keys must use P-256, P-384 or P-521")
        return public_pem_of(key)
    raise UnsupportedKey("only RSA and EC public keys are supported")


def verification_key(public_pem: str) -> tuple[PublicJwk, tuple[str, ...]]:
    """The joserfc key for a stored public key and the algorithms it may verify."""
    key = serialization.load_pem_public_key(public_pem.encode())
    if isinstance(key, rsa.RSAPublicKey):
        return RSAKey.import_key(key), _RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_ALGORITHMS:
        return ECKey.import_key(key), _EC_ALGORITHMS[key.curve.name]
    raise UnsupportedKey("stored key has an unsupported type")


def algorithms_supported() -> list[str]:
    """Every algorithm a machine key may sign assertions with, for the discovery document."""
    return [*_RSA_ALGORITHMS, *(alg for algs in _EC_ALGORITHMS.values() for alg in algs)]
