"""Request dependencies: resources made in the lifespan, the principal, the role checks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.auth import Refused
from api.errors import Forbidden, Unauthorized, Unavailable
from api.events import TaskEventHub
from api.schemas import TaskTypeName
from longtasks.auth.tickets import TicketSigner
from longtasks.auth.tokens import Principal, TokenVerifier
from longtasks.domain import Role
from longtasks.eta import SendLimits
from longtasks.settings import Settings
from longtasks.temporal.client import connect


@dataclass
class Resources:
    """Made once at start-up (lifespan) and shared by every request."""

    settings: Settings
    engine: AsyncEngine
    temporal: Client | None = None
    # The LISTEN/NOTIFY fan-out for SSE readers, made on first use.
    events: TaskEventHub | None = None
    _connect_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Per business: (when read, its sending limits), for the ETA (api.task_views).
    limits_cache: dict[int, tuple[float, SendLimits]] = field(default_factory=dict)
    # The task types whose ETA those limits bound: set by `create_app` from its registry.
    sending_task_types: frozenset[str] = frozenset()
    # Built from the settings: a key that does not load stops the API at start-up.
    tokens: TokenVerifier = field(init=False)
    tickets: TicketSigner = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = TokenVerifier.from_settings(self.settings)
        self.tickets = TicketSigner(self.settings.encryption_keys, self.settings.ticket_ttl_s)

    async def temporal_client(self) -> Client:
        """Connected lazily: the API serves reads while Temporal is down or still starting."""
        if self.temporal is not None:
            return self.temporal
        async with self._connect_lock:
            if self.temporal is None:
                try:
                    self.temporal = await connect(self.settings, wait_s=3.0)
                except Exception as exc:
                    raise Unavailable(f"Temporal is unavailable: {exc}") from exc
        return self.temporal


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def require_registered_task_type(request: Request, task_type: str, loc: tuple[str, ...]) -> str:
    """422, like any value outside a schema's enum, unless the app's registry has the type."""
    served: frozenset[str] = request.app.state.task_types
    if task_type not in served:
        raise RequestValidationError(
            [
                {
                    "type": "enum",
                    "loc": loc,
                    "msg": f"Input should be one of: {', '.join(sorted(served))}",
                    "input": task_type,
                }
            ]
        )
    return task_type


def task_type_filter(
    request: Request, task_type: Annotated[TaskTypeName | None, Query()] = None
) -> str | None:
    if task_type is None:
        return None
    return require_registered_task_type(request, task_type, ("query", "task_type"))


TaskTypeFilter = Annotated[str | None, Depends(task_type_filter)]


def get_principal(request: Request) -> Principal:
    """The caller, as `api.auth.Authenticate` verified it (and found it not revoked)."""
    outcome = request.scope.get("state", {}).get("auth")
    if isinstance(outcome, Principal):
        request.state.principal = outcome
        return outcome
    raise Unauthorized(outcome.reason if isinstance(outcome, Refused) else "missing bearer token")


def require(role: Role) -> object:
    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.role.allows(role):
            raise Forbidden(f"this action needs the {role.value} role")
        return principal

    return Depends(check)


Viewer = Annotated[Principal, require(Role.viewer)]
Operator = Annotated[Principal, require(Role.operator)]
Admin = Annotated[Principal, require(Role.admin)]
