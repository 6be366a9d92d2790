"""The audit log (`audit_events`, append-only): one call records who did what.

    await audit.record(conn, AuditAction.task_paused, task_id=task.id)

in the same transaction as the change itself, so an action and its record commit together or
not at all. The actor is the request's: the API sets it once per request from the verified
token (subject and role), the client address and the request id (`api.auth`); work nobody
asked for in a request runs `with audit.acting_as(Actor.system(business_id, "<what>"))` (a
Gmail sync a schedule started). Recording with no actor at all is an error, never a silent
"unknown".
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import enum
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


class AuditAction(enum.StrEnum):
    task_started = "task.started"
    task_cancelled = "task.cancelled"
    task_deleted = "task.deleted"
    # Issue 14's controls record these through the same call.
    task_paused = "task.paused"
    task_resumed = "task.resumed"
    task_approved = "task.approved"
    task_rejected = "task.rejected"
    task_retried = "task.retried"
    policy_updated = "policy.updated"
    notifications_updated = "notifications.updated"
    notifications_deleted = "notifications.deleted"
    gmail_connection_updated = "gmail_connection.updated"
    token_revoked = "token.revoked"  # noqa: S105 - the name of an action


@dataclass(frozen=True)
class Actor:
    business_id: int
    subject: str
    role: str
    client_addr: str | None = None
    request_id: str | None = None

    @classmethod
    def system(cls, business_id: int, name: str) -> Actor:
        return cls(business_id=business_id, subject=f"system:{name}", role="system")


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar(
    "longtasks_audit_actor", default=None
)


@contextlib.contextmanager
def acting_as(actor: Actor | None) -> Iterator[None]:
    """What is recorded inside the block (in this task and the tasks it starts) is `actor`'s."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> Actor | None:
    return _actor.get()


class NoActor(RuntimeError):
    pass


@dataclass(frozen=True)
class AuditRow:
    id: int
    business_id: int
    at: dt.datetime
    action: str
    actor_subject: str
    actor_role: str
    task_id: int | None
    client_addr: str | None
    request_id: str | None
    details: dict[str, Any]


_INSERT = text("""
    INSERT INTO audit_events
        (business_id, action, actor_subject, actor_role, task_id, client_addr, request_id,
         details)
    VALUES (:business_id, :action, :subject, :role, :task_id, :client_addr, :request_id,
            CAST(:details AS jsonb))
""")


async def record(
    conn: AsyncConnection,
    action: AuditAction,
    *,
    task_id: int | None = None,
    details: Mapping[str, Any] | None = None,
    actor: Actor | None = None,
) -> None:
    """One row: `action` by `actor` (by default the request's, `acting_as`)."""
    actor = actor or _actor.get()
    if actor is None:
        raise NoActor(f"{action.value} recorded with no actor: wrap the work in acting_as()")
    await conn.execute(
        _INSERT,
        {
            "business_id": actor.business_id,
            "action": action.value,
            "subject": actor.subject,
            "role": actor.role,
            "task_id": task_id,
            "client_addr": actor.client_addr,
            "request_id": actor.request_id,
            "details": json.dumps(dict(details or {}), default=str),
        },
    )


_COLUMNS = ", ".join(AuditRow.__dataclass_fields__)


async def list_events(
    conn: AsyncConnection,
    business_id: int,
    *,
    limit: int,
    before_id: int | None = None,
    action: str | None = None,
    task_id: int | None = None,
) -> list[AuditRow]:
    """Newest first."""
    conditions = ["business_id = :business_id"]
    params: dict[str, Any] = {"business_id": business_id, "limit": limit}
    for column, value in (("id <", before_id), ("action =", action), ("task_id =", task_id)):
        if value is not None:
            name = column.split()[0]
            conditions.append(f"{column} :{name}")
            params[name] = value
    result = await conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM audit_events WHERE {' AND '.join(conditions)}"  # noqa: S608 - fixed names
            " ORDER BY id DESC LIMIT :limit"
        ),
        params,
    )
    return [AuditRow(**row) for row in result.mappings()]
