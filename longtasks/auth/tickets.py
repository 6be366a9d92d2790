"""Tickets: a bearer token's stand-in where only a URL can be sent.

EventSource and download links cannot set an Authorization header, and a long-lived token in a
URL ends up in access logs, proxies and browser history. A ticket is minted by an authenticated
`POST /api/tickets` for one resource (a path), is good for GETs of that path only, for about a
minute, and carries its token's business, role, subject and jti: revoking the token revokes its
tickets, and a stream opened with one ends when the token would have expired.

Stateless (an HMAC over the claims), so every API replica verifies what another minted; keyed by
ENCRYPTION_KEY under its own label, so rotating that key rotates these too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Sequence

from longtasks.auth.tokens import Principal, TokenRejected
from longtasks.domain import Role

PREFIX = "t1"
MAX_TICKET_CHARS = 2048


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(key: str) -> bytes:
    return hmac.new(b"longtasks-ticket-v1", key.encode(), hashlib.sha256).digest()


class TicketSigner:
    def __init__(self, keys: Sequence[str], ttl_s: int) -> None:
        assert keys, "at least one key"
        self._keys = [_derive(k) for k in keys]
        self._ttl_s = ttl_s

    def _sign(self, key: bytes, body: str) -> str:
        return _b64(hmac.new(key, f"{PREFIX}.{body}".encode(), hashlib.sha256).digest())

    def mint(self, principal: Principal, path: str, *, now: float | None = None) -> tuple[str, int]:
        """The ticket for GETs of `path`, and when it stops opening it (epoch seconds)."""
        issued = time.time() if now is None else now
        expires = int(min(issued + self._ttl_s, principal.expires_at))
        body = _b64(
            json.dumps(
                {
                    "b": principal.business_id,
                    "r": principal.role.value,
                    "s": principal.subject,
                    "j": principal.jti,
                    "x": principal.expires_at,
                    "p": path,
                    "e": expires,
                },
                separators=(",", ":"),
            ).encode()
        )
        return f"{PREFIX}.{body}.{self._sign(self._keys[0], body)}", expires

    def verify(self, ticket: str, path: str, *, now: float | None = None) -> Principal:
        if len(ticket) > MAX_TICKET_CHARS:
            raise TokenRejected("invalid ticket")
        prefix, _, rest = ticket.partition(".")
        body, _, signature = rest.partition(".")
        if prefix != PREFIX or not body or not signature:
            raise TokenRejected("invalid ticket")
        if not any(hmac.compare_digest(self._sign(k, body), signature) for k in self._keys):
            raise TokenRejected("invalid ticket")
        try:
            claims = json.loads(_unb64(body))
            business_id, role, subject = int(claims["b"]), Role(claims["r"]), str(claims["s"])
            jti, token_expires = str(claims["j"]), float(claims["x"])
            bound_path, expires = str(claims["p"]), int(claims["e"])
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise TokenRejected("invalid ticket") from exc
        if (time.time() if now is None else now) > expires:
            raise TokenRejected("ticket expired; mint another with POST /api/tickets")
        if bound_path != path:
            raise TokenRejected("this ticket is for another resource")
        return Principal(
            business_id=business_id,
            role=role,
            subject=subject,
            jti=jti,
            expires_at=token_expires,
        )
