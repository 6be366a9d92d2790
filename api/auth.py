"""Bearer tokens: JWT HS256 with the claims `business_id` and `role` (and `exp`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from api.errors import Unauthorized
from longtasks.domain import Role

ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    business_id: int
    role: Role
    token_id: str


def issue_token(secret: str, *, business_id: int, role: Role, ttl_s: int) -> str:
    now = int(time.time())
    claims = {
        "business_id": business_id,
        "role": role.value,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        "sub": f"business:{business_id}:{role.value}",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "business_id", "role"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise Unauthorized("token not valid yet") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc
    business_id = claims.get("business_id")
    if not isinstance(business_id, int) or isinstance(business_id, bool) or business_id <= 0:
        raise Unauthorized("invalid token: business_id must be a positive integer")
    try:
        role = Role(str(claims.get("role")))
    except ValueError as exc:
        raise Unauthorized("invalid token: unknown role") from exc
    return Principal(business_id=business_id, role=role, token_id=token[-16:])
