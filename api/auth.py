"""Authentication at the edge: every `/api` request's credential is verified once, here.

A request carries its bearer token in `Authorization: Bearer ...`, or, for the few GETs a
browser opens by URL (event streams, CSV downloads), a `?ticket=` minted for that path by
`POST /api/tickets`. A long-lived token in a URL (`?access_token=`) is refused: URLs end up in
access logs, proxies and browser history.

The outcome (a principal or the reason there is none) is left in the request's state for the
route dependencies (`api.deps`) and the log context; a route that needs no caller ignores it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from api.middleware import send_json
from longtasks.auth.tickets import TicketSigner
from longtasks.auth.tokens import Principal, TokenRejected, TokenVerifier
from longtasks.db.repositories import revocations

TICKET_PARAM = "ticket"


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


class Authenticate:
    """ASGI middleware for `/api`: verify the credential, then ask the denylist (one indexed
    read), and leave `state["auth"]` (a Principal or Refused) for the dependencies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/api/"):
            await self.app(scope, receive, send)
            return
        resources = scope["app"].state.resources
        state = scope.setdefault("state", {})
        outcome: Principal | Refused
        try:
            principal = authenticate(scope, resources.tokens, resources.tickets)
        except TokenRejected as exc:
            outcome = Refused(str(exc))
        else:
            try:
                async with resources.engine.connect() as conn:
                    revoked = await revocations.is_revoked(
                        conn, business_id=principal.business_id, jti=principal.jti
                    )
            except (OperationalError, DBAPIError, PoolTimeout, OSError):
                # Outside the routes' exception handlers: answer as they would.
                await send_json(
                    send,
                    503,
                    "the database is unavailable right now; retry shortly",
                    [(b"retry-after", b"2")],
                )
                return
            outcome = Refused("token revoked") if revoked else principal
        state["auth"] = outcome
        await self.app(scope, receive, send)
