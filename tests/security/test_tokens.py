"""Tokens a host application signs: asymmetric keys by kid, required claims, bounded lifetime and
skew, rotation, and every known attack answered 401, on an API configured like production's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from longtasks.auth.tokens import TokenSigner, issue_token
from longtasks.domain import Role
from longtasks.settings import Environment
from tests.conftest import FaultReport, SecurityRow, Stack
from tests.security.conftest import dedicated_api

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def public_pem(private: PrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def private_pem(private: PrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(
    header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    """A JWT assembled by hand: what an attacker sends when no library would sign it."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
NEXT_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STRANGER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

KEYS = {"rsa-1": public_pem(RSA_KEY), "ec-1": public_pem(EC_KEY), "ed-1": public_pem(ED_KEY)}


def signer(kid: str, private: PrivateKey) -> TokenSigner:
    return TokenSigner.from_private_pem(private_pem(private), kid)


class Claims:
    """Valid claims for one business, and tokens made from them with one thing changed."""

    def __init__(self, stack: Stack, business_id: int) -> None:
        self.stack = stack
        self.business_id = business_id
        self.now = int(time.time())

    def valid(self, **changes: Any) -> dict[str, Any]:
        claims = {
            "business_id": self.business_id,
            "role": "viewer",
            "sub": "host-user-42",
            "jti": f"jti-{time.time_ns()}",
            "iss": self.stack.settings.jwt_issuer,
            "aud": self.stack.settings.jwt_audience,
            "iat": self.now,
            "nbf": self.now,
            "exp": self.now + 300,
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, kid: str, private: PrivateKey, **changes: Any) -> str:
        sign = signer(kid, private)
        return jwt.encode(
            self.valid(**changes), sign.key, algorithm=sign.algorithm, headers={"kid": kid}
        )


async def status_of(http: httpx.AsyncClient, token: str) -> int:
    response = await http.get("/api/long_tasks", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def test_each_algorithm_verifies_by_kid_and_every_attack_is_401(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    business_id = await new_business()
    c = Claims(stack, business_id)
    leeway = stack.settings.jwt_leeway_s
    max_lifetime = stack.settings.jwt_max_lifetime_s
    hs_secret = stack.settings.jwt_secret
    good = {
        "RS256": c.token("rsa-1", RSA_KEY),
        "ES256": c.token("ec-1", EC_KEY),
        "EdDSA": c.token("ed-1", ED_KEY),
        "HS256 (development)": stack.token(business_id, "viewer"),
        "expired, within the clock skew": c.token(
            "rsa-1", RSA_KEY, iat=c.now - 100, exp=c.now - leeway // 2
        ),
    }
    rsa_public = KEYS["rsa-1"].encode()

    def hs_with(secret: bytes) -> Callable[[bytes], bytes]:
        return lambda data: hmac.new(secret, data, hashlib.sha256).digest()

    attacks = {
        "wrong key (another RSA key under a known kid)": c.token("rsa-1", STRANGER_RSA_KEY),
        "wrong aud": c.token("rsa-1", RSA_KEY, aud="another-service"),
        "wrong iss": c.token("rsa-1", RSA_KEY, iss="https://evil.example"),
        "expired past the clock skew": c.token(
            "rsa-1", RSA_KEY, iat=c.now - 600, exp=c.now - leeway - 60
        ),
        "issued in the future": c.token(
            "rsa-1", RSA_KEY, iat=c.now + leeway + 600, exp=c.now + leeway + 900, nbf=None
        ),
        "not yet valid (nbf)": c.token("rsa-1", RSA_KEY, nbf=c.now + leeway + 600),
        "lifetime over the maximum": c.token("rsa-1", RSA_KEY, exp=c.now + max_lifetime + 3600),
        "alg none, no kid": hand_made(
            {"alg": "none", "typ": "JWT"}, c.valid(), lambda _: b""
        ).rstrip("."),
        "alg none under a known kid": hand_made(
            {"alg": "none", "typ": "JWT", "kid": "rsa-1"}, c.valid(), lambda _: b""
        ),
        "HS/RS confusion: HS256 keyed with the RSA public key, its kid": hand_made(
            {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, c.valid(), hs_with(rsa_public)
        ),
        "HS/RS confusion: HS256 keyed with the RSA public key, no kid": hand_made(
            {"alg": "HS256", "typ": "JWT"}, c.valid(), hs_with(rsa_public)
        ),
        "ES256 signature under the RSA key's kid": jwt.encode(
            c.valid(), EC_KEY, algorithm="ES256", headers={"kid": "rsa-1"}
        ),
        "unknown kid": c.token("rsa-9", RSA_KEY),
        "kid that is not text": hand_made(
            {"alg": "RS256", "typ": "JWT", "kid": ["rsa-1"]},
            c.valid(),
            lambda data: jwt.get_algorithm_by_name("RS256").sign(data, RSA_KEY),
        ),
        "HS256 with another secret": jwt.encode(c.valid(), hs_secret[::-1], algorithm="HS256"),
        "no jti": c.token("rsa-1", RSA_KEY, jti=None),
        "no sub": c.token("rsa-1", RSA_KEY, sub=None),
        "no iat": c.token("rsa-1", RSA_KEY, iat=None),
        "no aud": c.token("rsa-1", RSA_KEY, aud=None),
        "no iss": c.token("rsa-1", RSA_KEY, iss=None),
        "business_id as text": c.token("rsa-1", RSA_KEY, business_id=str(business_id)),
        "tampered claims (role raised after signing)": _tampered(c.token("rsa-1", RSA_KEY)),
    }
    async with (
        dedicated_api(stack, jwt_public_keys=KEYS) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        for label, token in good.items():
            assert await status_of(http, token) == 200, label
        refused = {}
        for label, token in attacks.items():
            response = await http.get(
                "/api/long_tasks", headers={"Authorization": f"Bearer {token}"}
            )
            refused[label] = response.status_code
            assert response.status_code == 401, (label, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
    fault_report.add_security(
        SecurityRow(
            area="tokens",
            check="token attacks: " + "; ".join(attacks),
            cases=len(attacks),
            outcome=f"all {len(attacks)} answered 401; RS256, ES256, EdDSA and dev HS256 verify",
        )
    )


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    return f"{header}.{b64(json.dumps(claims).encode())}.{signature}"


async def test_key_rotation_keeps_both_keys_during_the_overlap(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    business_id = await new_business()
    c = Claims(stack, business_id)
    old_token = c.token("rsa-1", RSA_KEY)
    new_token = c.token("rsa-2", NEXT_RSA_KEY)
    overlap = {"rsa-1": KEYS["rsa-1"], "rsa-2": public_pem(NEXT_RSA_KEY)}
    async with (
        dedicated_api(stack, jwt_public_keys=overlap) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        assert await status_of(http, old_token) == 200
        assert await status_of(http, new_token) == 200
    # After the overlap the old key is removed: its tokens stop, the new key's go on.
    async with (
        dedicated_api(stack, jwt_public_keys={"rsa-2": public_pem(NEXT_RSA_KEY)}) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        assert await status_of(http, old_token) == 401
        assert await status_of(http, new_token) == 200
    fault_report.add_security(
        SecurityRow(
            area="tokens",
            check="key rotation: rsa-1 and rsa-2 configured, then rsa-2 alone",
            cases=4,
            outcome="both verify during the overlap; after it rsa-1's tokens are 401",
        )
    )


async def test_production_with_public_keys_refuses_hs256(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    c = Claims(stack, business_id)
    async with (
        dedicated_api(stack, environment=Environment.production, jwt_public_keys=KEYS) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        assert await status_of(http, c.token("ed-1", ED_KEY)) == 200
        hs_token = stack.token(business_id, "viewer")
        response = await http.get(
            "/api/long_tasks", headers={"Authorization": f"Bearer {hs_token}"}
        )
        assert response.status_code == 401
        assert "kid" in response.json()["detail"]


async def test_a_principal_carries_the_subject_and_the_host_signs_with_its_own_key(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """What a host application does: sign with its private key (here via the same helper
    `longtasks token --key` uses); longtasks holds only the public key."""
    business_id = await new_business()
    token = issue_token(
        signer("ec-1", EC_KEY),
        business_id=business_id,
        role=Role.admin,
        subject="dana@host",
        ttl_s=600,
        issuer=stack.settings.jwt_issuer,
        audience=stack.settings.jwt_audience,
    )
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "ec-1", "typ": "JWT"}
    async with (
        dedicated_api(stack, jwt_public_keys=KEYS) as base_url,
        httpx.AsyncClient(
            base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as http,
    ):
        jti = jwt.decode(token, options={"verify_signature": False})["jti"]
        revoked = await http.post("/api/tokens/revoke", json={"jti": jti})
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked_by"] == "dana@host"
        assert (await http.get("/api/long_tasks")).status_code == 401


def test_keys_that_would_weaken_verification_are_refused_at_start_up() -> None:
    from longtasks.auth.keys import KeyConfigError, load_key_set

    weak_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    p384 = ec.generate_private_key(ec.SECP384R1())
    cases = {
        "a private key": private_pem(RSA_KEY).decode(),
        "RSA under 2048 bits": public_pem(weak_rsa),
        "an EC curve other than P-256": public_pem(p384),
        "not PEM": "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n",
        "a path that is not a file": "/nonexistent/key.pem",
    }
    for label, value in cases.items():
        try:
            load_key_set({"k": value})
        except KeyConfigError:
            continue
        raise AssertionError(f"{label} was accepted")
    loaded = load_key_set(KEYS)
    assert {k: v.algorithm for k, v in loaded.items()} == {
        "rsa-1": "RS256",
        "ec-1": "ES256",
        "ed-1": "EdDSA",
    }
