"""Request dependencies: resources made in the lifespan, the principal, the role checks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.auth import Principal, verify_token
from api.errors import Forbidden, Unauthorized, Unavailable
from api.events import TaskEventHub
from api.schemas import TaskTypeName
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


def bearer_token(request: Request) -> str:
    header = request.headers.get("Authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'")
        return token.strip()
    # EventSource and download links cannot set headers: GETs may carry the token as a query
    # parameter instead.
    query_token = request.query_params.get("access_token")
    if query_token and request.method == "GET":
        return query_token
    raise Unauthorized("missing bearer token")


def get_principal(request: Request, resources: ResourcesDep) -> Principal:
    principal = verify_token(resources.settings.jwt_secret, bearer_token(request))
    request.state.principal = principal
    return principal


def require(role: Role) -> object:
    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.role.allows(role):
            raise Forbidden(f"this action needs the {role.value} role")
        return principal

    return Depends(check)


Viewer = Annotated[Principal, require(Role.viewer)]
Operator = Annotated[Principal, require(Role.operator)]
Admin = Annotated[Principal, require(Role.admin)]
