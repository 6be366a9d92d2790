"""`POST /api/tickets`: a short-lived ticket for one URL a browser opens by itself.

EventSource and download links cannot send an Authorization header. Instead of the token, the
page asks for a ticket for the path it is about to open and puts it in the URL as `?ticket=`: it
opens that path only, with GET only, for `TICKET_TTL_S` (about a minute; an open stream keeps
going), with the caller's business, role and subject, and it dies with the token.
"""

from __future__ import annotations

import datetime as dt
import re

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth import TICKET_PARAM
from api.deps import ResourcesDep, Viewer
from api.errors import Forbidden
from api.routers.tasks import load_task
from api.transactions import TransactionsDep
from longtasks.domain import Role

router = APIRouter(prefix="/api/tickets", tags=["tickets"])

# The paths a ticket can open: (pattern, least role); a task's paths name one of its tasks.
TICKET_PATHS: list[tuple[re.Pattern[str], Role]] = [
    (re.compile(r"^/api/long_tasks/events$"), Role.viewer),
    (re.compile(r"^/api/long_tasks/(?P<task_id>[0-9]{1,19})/events$"), Role.viewer),
    (re.compile(r"^/api/long_tasks/(?P<task_id>[0-9]{1,19})/items\.csv$"), Role.viewer),
    (re.compile(r"^/api/audit\.csv$"), Role.admin),
]


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(max_length=300, examples=["/api/long_tasks/12/events"])

    @field_validator("path")
    @classmethod
    def _ticketable(cls, value: str) -> str:
        if not any(pattern.match(value) for pattern, _ in TICKET_PATHS):
            raise ValueError("no ticket opens this path (streams and CSV downloads only)")
        return value


class TicketOut(BaseModel):
    ticket: str
    url: str = Field(description="the path with the ticket: open it as it is, or add parameters")
    expires_at: dt.datetime


@router.post("", response_model=TicketOut, status_code=201)
async def mint_ticket(
    body: TicketIn, resources: ResourcesDep, principal: Viewer, transactions: TransactionsDep
) -> TicketOut:
    for pattern, role in TICKET_PATHS:
        match = pattern.match(body.path)
        if match is None:
            continue
        if not principal.role.allows(role):
            raise Forbidden(f"this resource needs the {role.value} role")
        task_id = match.groupdict().get("task_id")
        if task_id is not None:  # another business's task: 404, as everywhere
            async with transactions.read() as conn:
                await load_task(conn, int(task_id), principal.business_id)
        ticket, expires = resources.tickets.mint(principal, body.path)
        return TicketOut(
            ticket=ticket,
            url=f"{body.path}?{TICKET_PARAM}={ticket}",
            expires_at=dt.datetime.fromtimestamp(expires, dt.UTC),
        )
    raise AssertionError("TicketIn admits ticketable paths only")
