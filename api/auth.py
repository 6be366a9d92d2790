"""Authentication at the edge: every `/api` request's credential is verified once, here.

A request carries its bearer token in `Authorization: Bearer ...`, or, for the few GETs a
browser opens by URL (event streams, CSV downloads), a `?ticket=` minted for that path by
`POST /api/tickets`. A long-lived token in a URL (`?access_token=`) is refused: URLs end up in
access logs, proxies and browser history.

Then, in one round trip to Postgres, the caller's request budget is charged and the denylist
asked (`longtasks.db.repositories.admission`). The budget is the verified identity's (business
and subject: any number of its tokens share it), or, without a valid credential, the client
address's (an IPv6 client's /64): a flood of made-up tokens spends its sender's budget only, and
no one else's. Budgets live in Postgres, so every API replica charges the same one.

The outcome (a principal or the reason there is none) is left in the request's state for the
route dependencies (`api.deps`) and the log context; a route that needs no caller ignores it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import time
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from api.middleware import send_json
from longtasks.auth.tickets import TicketSigner
from longtasks.auth.tokens import Principal, TokenRejected, TokenVerifier
from longtasks.db import tenancy
from longtasks.db.repositories import admission, audit
from longtasks.db.repositories.audit import Actor

TICKET_PARAM = "ticket"
# Provider callbacks (signed by the provider, sent from its few addresses) are not budgeted.
UNMETERED_PREFIXES = ("/api/webhooks/",)
PRUNE_EVERY_S = 60.0


@dataclass(frozen=True)
class Refused:
    reason: str


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return None


def authenticate(scope: Scope, tokens: TokenVerifier, tickets: TicketSigner) -> Principal:
    """The principal a request's credential names (signature, claims, ticket binding); raises
    `TokenRejected` with the reason. Revocation is the caller's next question."""
    header = _header(scope, b"authorization")
    if header is not None:
        scheme, _, token = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenRejected("Authorization header must be 'Bearer <token>'")
        return tokens.verify(token.strip())
    query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
    ticket = query.get(TICKET_PARAM)
    if ticket is not None:
        if scope.get("method") != "GET":
            raise TokenRejected("tickets open GET requests only")
        return tickets.verify(ticket, scope.get("path", ""))
    if "access_token" in query:
        raise TokenRejected(
            "tokens are not accepted in URLs; send Authorization: Bearer, or mint a ticket"
            " for this URL with POST /api/tickets"
        )
    raise TokenRejected("missing bearer token")


def budget_key(scope: Scope, principal: Principal | None) -> str:
    if principal is not None:
        return f"id:{principal.business_id}:{principal.subject}"
    client = scope.get("client")
    host = str(client[0]) if client else "?"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"ip:{host[:64]}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        # One subscriber usually holds a whole /64: its addresses share one budget.
        return f"ip:{ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"ip:{address}"


class Authenticate:
    """ASGI middleware for `/api`: verify the credential, charge the budget and ask the denylist
    (one statement), answer 429 over budget, and leave `state["auth"]` (a Principal or Refused)
    for the dependencies."""

    def __init__(self, app: ASGIApp, rate_per_s: float, burst: int) -> None:
        self.app = app
        self.rate = rate_per_s
        self.burst = max(burst, 1)
        self._last_prune = time.monotonic()
        self._pruning: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        resources = scope["app"].state.resources
        state = scope.setdefault("state", {})
        principal: Principal | None = None
        outcome: Principal | Refused
        try:
            principal = authenticate(scope, resources.tokens, resources.tickets)
        except TokenRejected as exc:
            outcome = Refused(str(exc))
        metered = self.rate > 0 and not path.startswith(UNMETERED_PREFIXES)
        try:
            # The denylist is the business's own (row-level security): asked as its business.
            with tenancy.acting_for(principal.business_id if principal else None):
                verdict = await self._admit(resources.engine, scope, principal, metered)
        except (OperationalError, DBAPIError, PoolTimeout, OSError):
            # Outside the routes' exception handlers: answer as they would.
            await send_json(
                send,
                503,
                "the database is unavailable right now; retry shortly",
                [(b"retry-after", b"2")],
            )
            return
        if metered:
            self._maybe_prune(resources.engine)
        if not verdict.admitted:
            await send_json(
                send,
                429,
                "rate limit exceeded",
                [(b"retry-after", str(math.ceil(verdict.retry_after_s)).encode())],
            )
            return
        if principal is not None:
            outcome = Refused("token revoked") if verdict.revoked else principal
        state["auth"] = outcome
        if not isinstance(outcome, Principal):
            await self.app(scope, receive, send)
            return
        # What this request records in the audit log is this caller's doing.
        client = scope.get("client")
        actor = Actor(
            business_id=outcome.business_id,
            subject=outcome.subject,
            role=outcome.role.value,
            client_addr=str(client[0])[:64] if client else None,
            request_id=state.get("request_id"),
        )
        # Every transaction of this request acts for the caller's business (db.tenancy): the
        # database shows it nothing else, whatever a query forgets to filter.
        with audit.acting_as(actor), tenancy.acting_for(outcome.business_id):
            await self.app(scope, receive, send)

    async def _admit(
        self, engine: AsyncEngine, scope: Scope, principal: Principal | None, metered: bool
    ) -> admission.Admission:
        async with engine.begin() as conn:
            return await admission.admit(
                conn,
                key=budget_key(scope, principal) if metered else None,
                rate_per_s=self.rate,
                burst=self.burst,
                token=(principal.business_id, principal.jti) if principal else None,
            )

    def _maybe_prune(self, engine: AsyncEngine) -> None:
        now = time.monotonic()
        if now - self._last_prune < PRUNE_EVERY_S or (self._pruning and not self._pruning.done()):
            return
        self._last_prune = now

        async def prune() -> None:
            with contextlib.suppress(OperationalError, DBAPIError, PoolTimeout, OSError):
                async with engine.begin() as conn:
                    await admission.prune(conn)

        self._pruning = asyncio.create_task(prune())
