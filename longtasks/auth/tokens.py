"""Bearer tokens: JWTs a host application signs and longtasks verifies.

Claims: `business_id` and `role` (what the caller may touch), `sub` (who: recorded as the actor
of what they do), `jti` (this token: what revocation names), `iss` and `aud` (who signed it and
for whom), `iat` and `exp` (a lifetime no longer than the configured maximum). All required.

Keys: asymmetric public keys chosen by the header's `kid` (RS256, ES256, EdDSA; see `keys`), so
the host keeps its private key and longtasks can verify but never mint; during a key rotation the
old and the new kid are both configured and both verify. HS256 with `JWT_SECRET` (no `kid`) is
the development path: `longtasks token` signs with it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from longtasks.auth.keys import VerificationKey, algorithm_for, load_key_set
from longtasks.domain import Role
from longtasks.settings import Settings

HS256 = "HS256"
MAX_TOKEN_CHARS = 8192
MAX_CLAIM_CHARS = 200
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti", "business_id", "role"]


class TokenRejected(Exception):
    """Why a token is not accepted (the API answers 401 with it)."""


@dataclass(frozen=True)
class Principal:
    business_id: int
    role: Role
    # The stable identity of the caller (a user of the host application): the audit log's actor.
    subject: str
    # The token's `jti`: what `POST /api/tokens/revoke` names.
    jti: str
    # Epoch seconds; a stream opened with this token ends when it passes.
    expires_at: float


@dataclass(frozen=True)
class TokenSigner:
    """What signs a token: the HS256 development secret, or a private key and its kid."""

    key: Any
    algorithm: str
    kid: str | None = None

    @classmethod
    def hs256(cls, secret: str) -> TokenSigner:
        return cls(key=secret, algorithm=HS256)

    @classmethod
    def from_private_pem(cls, pem: bytes, kid: str) -> TokenSigner:
        private = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(
            private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
        ):
            raise ValueError(f"unsupported private key type {type(private).__name__}")
        return cls(key=private, algorithm=algorithm_for(private.public_key()), kid=kid)


def issue_token(
    signer: TokenSigner,
    *,
    business_id: int,
    role: Role,
    subject: str,
    ttl_s: int,
    issuer: str,
    audience: str,
    jti: str | None = None,
) -> str:
    now = int(time.time())
    claims = {
        "business_id": business_id,
        "role": role.value,
        "sub": subject,
        "jti": jti or uuid.uuid4().hex,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
    }
    headers = {"kid": signer.kid} if signer.kid else None
    return jwt.encode(claims, signer.key, algorithm=signer.algorithm, headers=headers)


def default_subject(business_id: int, role: Role) -> str:
    """Who a token stands for when its maker names no user: its business and role (two such
    admin tokens are the same person to the approval rule)."""
    return f"business:{business_id}:{role.value}"


def dev_token(settings: Settings, *, business_id: int, role: Role, subject: str) -> str:
    """An HS256 token with the configured issuer, audience and lifetime (`longtasks token`)."""
    return issue_token(
        TokenSigner.hs256(settings.jwt_secret),
        business_id=business_id,
        role=role,
        subject=subject,
        ttl_s=min(settings.jwt_ttl_s, settings.jwt_max_lifetime_s),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )


def _short_text(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_CLAIM_CHARS:
        raise TokenRejected(f"invalid token: {name} must be text of 1 to {MAX_CLAIM_CHARS} chars")
    if not value.isprintable():
        raise TokenRejected(f"invalid token: {name} must be printable text")
    return value


class TokenVerifier:
    """Verifies bearer tokens against the configured keys, issuer, audience and lifetime."""

    def __init__(
        self,
        *,
        keys: Mapping[str, VerificationKey],
        hs256_secret: str | None,
        issuer: str,
        audience: str,
        max_lifetime_s: int,
        leeway_s: int,
    ) -> None:
        self._keys = dict(keys)
        self._hs256_secret = hs256_secret
        self._issuer = issuer
        self._audience = audience
        self._max_lifetime_s = max_lifetime_s
        self._leeway_s = leeway_s

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        return cls(
            keys=load_key_set(settings.jwt_public_keys),
            hs256_secret=settings.jwt_secret if settings.hs256_enabled else None,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            max_lifetime_s=settings.jwt_max_lifetime_s,
            leeway_s=settings.jwt_leeway_s,
        )

    def _key_for(self, token: str) -> tuple[Any, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise TokenRejected(f"invalid token: {exc}") from exc
        algorithm, kid = header.get("alg"), header.get("kid")
        if kid is None:
            if self._hs256_secret is None:
                raise TokenRejected("invalid token: a kid naming a configured key is required")
            if algorithm != HS256:
                raise TokenRejected("invalid token: a token without a kid must be HS256")
            return self._hs256_secret, HS256
        entry = self._keys.get(kid) if isinstance(kid, str) else None
        if entry is None:
            raise TokenRejected("invalid token: unknown kid")
        if algorithm != entry.algorithm:
            raise TokenRejected(f"invalid token: key {kid!r} verifies {entry.algorithm} only")
        return entry.key, entry.algorithm

    def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRejected("invalid token: too long")
        key, algorithm = self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway_s,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenRejected("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenRejected("token not valid yet") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenRejected(f"invalid token: {exc}") from exc
        issued_at, expires_at = claims["iat"], claims["exp"]
        if not all(isinstance(v, int | float) for v in (issued_at, expires_at)):
            raise TokenRejected("invalid token: iat and exp must be numbers")
        if expires_at - issued_at > self._max_lifetime_s:
            raise TokenRejected(
                f"invalid token: lifetime over the maximum of {self._max_lifetime_s}s"
            )
        business_id = claims.get("business_id")
        if not isinstance(business_id, int) or isinstance(business_id, bool) or business_id <= 0:
            raise TokenRejected("invalid token: business_id must be a positive integer")
        if business_id > 2**63 - 1:
            raise TokenRejected("invalid token: business_id out of range")
        try:
            role = Role(str(claims.get("role")))
        except ValueError as exc:
            raise TokenRejected("invalid token: unknown role") from exc
        return Principal(
            business_id=business_id,
            role=role,
            subject=_short_text(claims, "sub"),
            jti=_short_text(claims, "jti"),
            expires_at=float(expires_at),
        )
