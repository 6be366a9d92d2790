"""Bearer tokens: JWT HS256 with the claims `business_id`, `role`, `sub` (and `exp`).

`sub` is the caller's stable identity (a user of the host application): tasks record it as
their creator, pauser and approver. A token without one stands for its business and role.
"""

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
    # Who is calling: recorded as the actor of what they do (create, pause, approve).
    subject: str


MAX_SUBJECT_CHARS = 200


def default_subject(business_id: int, role: Role) -> str:
    return f"business:{business_id}:{role.value}"


def issue_token(
    secret: str, *, business_id: int, role: Role, ttl_s: int, subject: str | None = None
) -> str:
    now = int(time.time())
    claims = {
        "business_id": business_id,
        "role": role.value,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        "sub": subject or default_subject(business_id, role),
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
    subject = claims.get("sub", default_subject(business_id, role))
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
        raise Unauthorized(f"invalid token: sub must be 1 to {MAX_SUBJECT_CHARS} characters")
    return Principal(business_id=business_id, role=role, token_id=token[-16:], subject=subject)
