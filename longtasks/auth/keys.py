"""Verification keys from configuration: public keys in PEM, each named by a `kid`.

The algorithm is a property of the key, never of the token: an RSA key verifies RS256 only, a
P-256 key ES256, an Ed25519 key EdDSA. A token whose header names another algorithm for that kid
(`alg: HS256` signed with the public key's PEM as an HMAC secret, `alg: none`) is refused before
any signature check, so no key can be used in a way its owner did not mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

MIN_RSA_BITS = 2048


class KeyConfigError(ValueError):
    pass


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    algorithm: str
    key: PublicKey


def algorithm_for(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyConfigError(f"RSA keys need {MIN_RSA_BITS}+ bits, got {key.key_size}")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyConfigError(f"EC keys must be P-256 (ES256), got {key.curve.name}")
        return "ES256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise KeyConfigError(f"unsupported key type {type(key).__name__}")


def _pem_text(value: str) -> str:
    """A PEM itself, or the path of a file holding one (a mounted secret)."""
    if value.lstrip().startswith("-----BEGIN"):
        return value
    path = Path(value)
    if not path.is_file():
        raise KeyConfigError("a key must be PEM text or the path of a PEM file")
    return path.read_text(encoding="ascii")


def load_public_key(kid: str, value: str) -> VerificationKey:
    text = _pem_text(value)
    if "PRIVATE KEY" in text:
        # longtasks only verifies; a private key in its configuration is a leak waiting to happen.
        raise KeyConfigError(f"key {kid!r} is a private key; configure its public key")
    try:
        key = serialization.load_pem_public_key(text.encode("ascii"))
    except ValueError as exc:
        raise KeyConfigError(f"key {kid!r} is not a PEM public key") from exc
    try:
        algorithm = algorithm_for(key)
    except KeyConfigError as exc:
        raise KeyConfigError(f"key {kid!r}: {exc}") from exc
    assert isinstance(key, PublicKey)
    return VerificationKey(kid=kid, algorithm=algorithm, key=key)


def load_key_set(config: Mapping[str, str]) -> dict[str, VerificationKey]:
    keys = {}
    for kid, value in config.items():
        if not kid or len(kid) > 100:
            raise KeyConfigError("a kid is 1 to 100 characters")
        keys[kid] = load_public_key(kid, value)
    return keys
