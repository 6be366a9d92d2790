"""`POST /api/tokens/revoke`: an admin ends one of their business's tokens, everywhere, now.

The token is named by its `jti`. From the commit on, every request with it is 401 on every API
replica (each request asks the denylist), its tickets stop opening their URLs, and streams opened
with it end within moments (the revocation is NOTIFYed to every replica's stream hub).
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Admin, ResourcesDep
from api.transactions import WriteConn
from longtasks.db.repositories import audit, businesses, revocations
from longtasks.db.repositories.audit import AuditAction

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jti: str = Field(min_length=1, max_length=200)


class RevokeOut(BaseModel):
    jti: str
    revoked_at: dt.datetime
    revoked_by: str


@router.post("/revoke", response_model=RevokeOut)
async def revoke_token(
    body: RevokeIn, resources: ResourcesDep, principal: Admin, conn: WriteConn
) -> RevokeOut:
    """Idempotent; revoking the caller's own token is allowed (a sign-out)."""
    settings = resources.settings
    await businesses.ensure_business(conn, principal.business_id)
    revocation = await revocations.revoke(
        conn,
        business_id=principal.business_id,
        jti=body.jti,
        revoked_by=principal.subject,
        # Any token with this jti has expired by then, so the row can go.
        keep_s=settings.jwt_max_lifetime_s + 2 * settings.jwt_leeway_s,
    )
    await audit.record(conn, AuditAction.token_revoked, details={"jti": body.jti})
    return RevokeOut(
        jti=revocation.jti, revoked_at=revocation.revoked_at, revoked_by=revocation.revoked_by
    )
