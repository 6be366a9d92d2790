"""`/api/policy`: what a business allows its tasks.

- `approval_required_above`: a task with more items (a broadcast's valid recipients) is created
  `awaiting_approval` and sends nothing until an admin other than its creator approves it.
- `daily_send_cap`: messages per UTC day across all the business's tasks; a task over it waits
  `paused` with the reason until the next day, or until the cap is raised here.
- `auto_pause_failure_share` and `auto_pause_window`: a task pauses itself once that share of
  its last `window` provider answers were failures (null share: never).

Reading is open to every role (the card explains a wait with it); changing it is for admins.
"""

from __future__ import annotations

import datetime as dt
import logging

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Admin, ResourcesDep, Viewer
from api.transactions import ReadConn, TransactionsDep
from longtasks.db.models import DEFAULT_WINDOW
from longtasks.db.repositories import audit, businesses
from longtasks.db.repositories import policies as policy_repo
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.audit import AuditAction
from longtasks.temporal.tasks import signal_recheck_quota

log = logging.getLogger("longtasks.api")

router = APIRouter(prefix="/api/policy", tags=["policy"])


# Built by validation from the business's row (`BusinessPolicy`), read by attribute.
class PolicyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    approval_required_above: int | None
    daily_send_cap: int | None
    auto_pause_failure_share: float | None
    auto_pause_window: int
    updated_by: str | None
    updated_at: dt.datetime | None


class PolicyIn(BaseModel):
    """Fields left out keep their value; `null` turns approval, the cap or auto-pause off."""

    model_config = ConfigDict(extra="forbid")
    approval_required_above: int | None = Field(default=None, ge=0, le=100_000_000)
    daily_send_cap: int | None = Field(default=None, ge=0, le=100_000_000)
    auto_pause_failure_share: float | None = Field(default=None, gt=0, le=1)
    auto_pause_window: int = Field(default=DEFAULT_WINDOW, ge=10, le=10_000)


@router.get("", response_model=PolicyOut)
async def get_policy(principal: Viewer, conn: ReadConn) -> PolicyOut:
    return PolicyOut.model_validate(await policy_repo.get_policy(conn, principal.business_id))


@router.put("", response_model=PolicyOut)
async def put_policy(
    body: PolicyIn, resources: ResourcesDep, principal: Admin, transactions: TransactionsDep
) -> PolicyOut:
    """Change the policy. Tasks already waiting for approval keep waiting; a raised or removed
    daily cap wakes the tasks it holds at once."""
    changes = body.model_dump(include=body.model_fields_set)
    # Committed before the tasks waiting on the cap are told to look again: they read it.
    async with transactions.write() as conn:
        await businesses.ensure_business(conn, principal.business_id)
        policy = await policy_repo.put_policy(
            conn, principal.business_id, changes, by=principal.subject
        )
        await audit.record(conn, AuditAction.policy_updated, details=changes)
        waiting = await task_repo.waiting_on_quota(conn, principal.business_id)
    if "daily_send_cap" in changes and waiting:
        client = await resources.temporal_client()
        for workflow_id in waiting:
            try:
                await signal_recheck_quota(client, workflow_id)
            except Exception:  # a task that just ended; the others still hear it
                log.warning("%s: could not signal a quota recheck", workflow_id, exc_info=True)
    return PolicyOut.model_validate(policy)
