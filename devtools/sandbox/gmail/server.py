"""The sandbox Gmail's HTTP server: the Gmail API routes, the OAuth token endpoint, quota and
faults, and the control endpoints tests and benchmarks drive it with.

Accounts. The mailbox's owner is the account the bearer token was issued to; `userId` is `me`
or that address. An account exists once registered (`POST /sandbox/gmail/accounts` or
`register_account()`), which answers a refresh token and a first access token. For dev mode a
refresh token spelled `sandbox:<email>` needs no registration: the token endpoint registers it on
first use. Any other unknown, or a revoked, refresh token gets `invalid_grant`.

Quota. Per-account token bucket of `quota_units_per_s` units refilled per second, one second of
burst; costs are Gmail's (messages.list 5, messages.get 5, attachments.get 5, history.list 2,
getProfile 1). Over quota: 429 `rateLimitExceeded`, or with probability
`rate_limit_403_fraction` a 403 `userRateLimitExceeded`. A request is checked in Gmail's order:
authentication, the mailbox's owner, injected faults (`server_error_rate`), then quota.
"""

from __future__ import annotations

import base64
import bisect
import datetime
import hashlib
import json
import math
import random
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from devtools.sandbox.gmail.corpus import KINDS, Kind
from devtools.sandbox.gmail.mailbox import Account, Archive
from devtools.sandbox.gmail.messages import MessageFacts, attachment_bytes, b64, walk_parts
from devtools.sandbox.gmail.query import QueryError, estimate_result_size, parse_query

QUOTA_COST = {"list": 5, "get": 5, "attachment": 5, "history": 2, "profile": 1}
DEFAULT_NEWEST_DATE = datetime.date(2025, 6, 30)


@dataclass
class _AccessToken:
    email: str
    expires_at: float


def _gmail_error(
    status: int,
    message: str,
    reason: str,
    *,
    domain: str = "global",
    headers: dict[str, str] | None = None,
) -> web.Response:
    status_text = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
    }[status]
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": status_text,
        }
    }
    return web.json_response(body, status=status, headers=headers)


_WWW_AUTHENTICATE = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def _encode_token(*parts: object) -> str:
    raw = ":".join(str(p) for p in parts)
    return base64.urlsafe_b64encode(raw.encode()).decode("ascii").rstrip("=")


def _decode_token(token: str, fields: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise QueryError("Invalid pageToken") from exc
    parts = raw.split(":")
    if len(parts) != fields:
        raise QueryError("Invalid pageToken")
    return parts


class GmailSandbox:
    """An in-memory Gmail for any number of accounts; mount it with `add_routes`."""

    def __init__(
        self,
        *,
        quota_units_per_s: float = 250.0,
        seed: int = 7,
        mailbox_size: int = 2000,
        new_messages_per_minute: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        newest_date: datetime.date = DEFAULT_NEWEST_DATE,
        history_retention: int = 10_000,
        access_token_ttl_s: float = 3600.0,
        rate_limit_403_fraction: float = 0.0,
        server_error_rate: float = 0.0,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        self.quota_units_per_s = quota_units_per_s
        self.archive = Archive.ending(newest_date, seed=seed, size=mailbox_size)
        self.new_messages_per_minute = new_messages_per_minute
        self.history_retention = history_retention
        self.access_token_ttl_s = access_token_ttl_s
        self.rate_limit_403_fraction = rate_limit_403_fraction
        self.server_error_rate = server_error_rate
        self._clock = clock
        self._wall_clock = wall_clock
        self._client = (client_id, client_secret)
        self._rng = random.Random(seed)
        self._accounts: dict[str, Account] = {}
        self._refresh_tokens: dict[str, str] = {}  # refresh token -> email
        self._revoked: set[str] = set()
        self._access_tokens: dict[str, _AccessToken] = {}
        self._stats: Counter[str] = Counter()

    @property
    def seed(self) -> int:
        return self.archive.seed

    @property
    def mailbox_size(self) -> int:
        """Messages in each mailbox's generated archive (before any delivered later)."""
        return self.archive.size

    # -- Python control surface (the HTTP control endpoints call these) ----------------------

    def register_account(self, email: str, refresh_token: str | None = None) -> dict[str, Any]:
        """Create (or find) the mailbox for `email`; answer a refresh token and an access token."""
        email = email.strip().lower()
        if "@" not in email:
            raise ValueError(f"not an email address: {email!r}")
        account = self._accounts.get(email)
        if account is None:
            account = Account.open(
                email, self.archive, now=self._clock(), bucket=self.quota_units_per_s
            )
            self._accounts[email] = account
        if refresh_token is None:
            digest = hashlib.sha256(f"refresh:{self.seed}:{email}".encode()).hexdigest()
            refresh_token = f"1//sbx-{digest[:32]}"
        self._refresh_tokens[refresh_token] = email
        self._revoked.discard(refresh_token)
        access_token = self._issue_access_token(email)
        return {
            "email": email,
            "refresh_token": refresh_token,
            "access_token": access_token,
            "expires_in": int(self.access_token_ttl_s),
            "history_id": str(account.latest_history_id),
        }

    def expire_access_tokens(self, email: str) -> int:
        """Expire every access token issued for `email`; the next call with one gets 401."""
        account = self._account(email)
        expired = 0
        for token in self._access_tokens.values():
            if token.email == account.email and token.expires_at > -math.inf:
                token.expires_at = -math.inf
                expired += 1
        return expired

    def revoke(self, email: str) -> None:
        """Revoke the account's refresh tokens and access tokens (the user disconnected us)."""
        account = self._account(email)
        for refresh_token, owner in self._refresh_tokens.items():
            if owner == account.email:
                self._revoked.add(refresh_token)
        self.expire_access_tokens(account.email)

    def deliver(self, email: str, count: int = 1, kind: Kind | None = None) -> list[str]:
        """Deliver `count` new messages now (of `kind` if given); answer their ids."""
        account = self._account(email)
        self._materialize(account)
        return [self._deliver_one(account, kind) for _ in range(count)]

    def expire_history(self, email: str) -> int:
        """Forget all history so far: any older `startHistoryId` answers 404 from now on."""
        account = self._account(email)
        account.history_floor = account.latest_history_id
        return account.history_floor

    def set_quota(
        self, quota_units_per_s: float | None = None, rate_limit_403_fraction: float | None = None
    ) -> None:
        if quota_units_per_s is not None:
            self.quota_units_per_s = quota_units_per_s
            for account in self._accounts.values():
                account.bucket = min(account.bucket, quota_units_per_s)
        if rate_limit_403_fraction is not None:
            self.rate_limit_403_fraction = rate_limit_403_fraction

    def set_faults(self, server_error_rate: float) -> None:
        self.server_error_rate = server_error_rate

    def message_facts(self, email: str, message_id: str) -> MessageFacts:
        """What message `message_id` of `email`'s mailbox is, and what a parser should read."""
        account = self._account(email)
        index = account.index_of(message_id)
        if index is None:
            raise KeyError(message_id)
        facts = account.rendered(index).facts
        return replace(facts, index=index)

    def stats(self) -> dict[str, int]:
        """Call and error counters since start (list_calls, get_calls, quota_errors, ...)."""
        keys = (
            "list_calls", "get_calls", "attachment_calls", "history_calls", "profile_calls",
            "token_refreshes", "token_errors", "auth_errors", "quota_errors", "not_found",
            "server_errors", "messages_delivered",
        )  # fmt: skip
        return {key: self._stats[key] for key in keys}

    # -- routes ------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        users = "/gmail/v1/users/{user_id}"
        app.router.add_get(f"{users}/messages", self._handle_list)
        app.router.add_get(f"{users}/messages/{{message_id}}", self._handle_get)
        app.router.add_get(
            f"{users}/messages/{{message_id}}/attachments/{{attachment_id}}",
            self._handle_attachment,
        )
        app.router.add_get(f"{users}/profile", self._handle_profile)
        app.router.add_get(f"{users}/history", self._handle_history)
        app.router.add_post("/oauth2/token", self._handle_token)
        control = "/sandbox/gmail"
        app.router.add_post(f"{control}/accounts", self._control_register)
        app.router.add_post(
            f"{control}/accounts/{{email}}/expire_access_tokens", self._control_expire
        )
        app.router.add_post(f"{control}/accounts/{{email}}/revoke", self._control_revoke)
        app.router.add_post(f"{control}/accounts/{{email}}/deliver", self._control_deliver)
        app.router.add_post(
            f"{control}/accounts/{{email}}/expire_history", self._control_expire_history
        )
        app.router.add_get(
            f"{control}/accounts/{{email}}/messages/{{message_id}}/facts", self._control_facts
        )
        app.router.add_put(f"{control}/quota", self._control_quota)
        app.router.add_put(f"{control}/faults", self._control_faults)
        app.router.add_get(f"{control}/stats", self._control_stats)

    # -- Gmail API handlers ------------------------------------------------------------------

    async def _handle_list(self, request: web.Request) -> web.Response:
        self._stats["list_calls"] += 1
        account = self._admit(request, "list")
        if isinstance(account, web.Response):
            return account
        try:
            max_results = self._max_results(request, default=100)
            query = parse_query(request.query.get("q", ""), self._wall_clock())
            fingerprint = zlib.crc32(request.query.get("q", "").encode())
            lo, hi = account.index_range(query)
            start = hi - 1
            if page_token := request.query.get("pageToken"):
                position, token_fp = _decode_token(page_token, 2)
                if int(token_fp) != fingerprint:
                    raise QueryError("Invalid pageToken")
                start = min(int(position), hi - 1)
        except (QueryError, ValueError) as exc:
            return _gmail_error(400, str(exc), "invalidArgument")

        ids: list[str] = []
        index = start
        scanned = 0
        while index >= lo and len(ids) < max_results:
            if account.matches(index, query):
                ids.append(account.message_id(index))
            index -= 1
            scanned += 1
        # Look ahead to the next match so the last page never promises more than there is.
        while index >= lo and not account.matches(index, query):
            index -= 1
            scanned += 1
        body: dict[str, Any] = {}
        if ids:
            body["messages"] = [{"id": i, "threadId": i} for i in ids]
        if index >= lo:
            body["nextPageToken"] = _encode_token(index, fingerprint)
        body["resultSizeEstimate"] = estimate_result_size(len(ids), scanned, hi - lo)
        return web.json_response(body)

    async def _handle_get(self, request: web.Request) -> web.Response:
        self._stats["get_calls"] += 1
        account = self._admit(request, "get")
        if isinstance(account, web.Response):
            return account
        message_id = request.match_info["message_id"]
        index = account.index_of(message_id)
        if index is None:
            if not re.fullmatch(r"[0-9a-f]{16}", message_id):
                return _gmail_error(400, "Invalid id value", "invalidArgument")
            self._stats["not_found"] += 1
            return _gmail_error(404, "Requested entity was not found.", "notFound")
        message = account.rendered(index).message
        fmt = request.query.get("format", "full").lower()
        if fmt == "full":
            return web.json_response(message)
        if fmt == "minimal":
            return web.json_response({k: v for k, v in message.items() if k != "payload"})
        if fmt == "metadata":
            payload = message["payload"]
            slim = {
                "partId": "",
                "mimeType": payload["mimeType"],
                "filename": "",
                "headers": payload["headers"],
            }
            return web.json_response({**message, "payload": slim})
        return _gmail_error(
            400,
            f"Invalid value at 'format' ({fmt}); the sandbox serves full, metadata, minimal",
            "invalidArgument",
        )

    async def _handle_attachment(self, request: web.Request) -> web.Response:
        self._stats["attachment_calls"] += 1
        account = self._admit(request, "attachment")
        if isinstance(account, web.Response):
            return account
        index = account.index_of(request.match_info["message_id"])
        wanted = request.match_info["attachment_id"]
        if index is not None:
            message = account.rendered(index).message
            for part in walk_parts(message["payload"]):
                if part.get("body", {}).get("attachmentId") == wanted:
                    data = attachment_bytes(part["filename"])
                    return web.json_response(
                        {"attachmentId": wanted, "size": len(data), "data": b64(data)}
                    )
        self._stats["not_found"] += 1
        return _gmail_error(404, "Requested entity was not found.", "notFound")

    async def _handle_profile(self, request: web.Request) -> web.Response:
        self._stats["profile_calls"] += 1
        account = self._admit(request, "profile")
        if isinstance(account, web.Response):
            return account
        total = account.total
        return web.json_response(
            {
                "emailAddress": account.email,
                "messagesTotal": total,
                "threadsTotal": total,
                "historyId": str(account.latest_history_id),
            }
        )

    async def _handle_history(self, request: web.Request) -> web.Response:
        self._stats["history_calls"] += 1
        account = self._admit(request, "history")
        if isinstance(account, web.Response):
            return account
        try:
            start_id = int(request.query["startHistoryId"])
            max_results = self._max_results(request, default=100)
            position: int | None = None
            if page_token := request.query.get("pageToken"):
                raw_position, token_start = _decode_token(page_token, 2)
                if int(token_start) != start_id:
                    raise QueryError("Invalid pageToken")
                position = int(raw_position)
        except KeyError:
            return _gmail_error(400, "Missing required parameter startHistoryId", "required")
        except (QueryError, ValueError) as exc:
            return _gmail_error(400, str(exc), "invalidArgument")
        if start_id < account.oldest_history_id(self.history_retention):
            self._stats["not_found"] += 1
            return _gmail_error(404, "Requested entity was not found.", "notFound")
        delivered = account.delivered
        if position is None:
            position = bisect.bisect_right(delivered, start_id, key=lambda d: d.history_id)
        page = delivered[position : position + max_results]
        body: dict[str, Any] = {}
        if page:
            body["history"] = [
                account.history_record(position + offset) for offset in range(len(page))
            ]
        if position + max_results < len(delivered):
            body["nextPageToken"] = _encode_token(position + max_results, start_id)
        body["historyId"] = str(account.latest_history_id)
        return web.json_response(body)

    async def _handle_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant_type = str(form.get("grant_type", ""))
        refresh_token = str(form.get("refresh_token", ""))
        client_id, client_secret = (
            str(form.get("client_id", "")),
            str(form.get("client_secret", "")),
        )
        if not client_id or not client_secret:
            self._stats["token_errors"] += 1
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        expected_id, expected_secret = self._client
        if (expected_id and client_id != expected_id) or (
            expected_secret and client_secret != expected_secret
        ):
            self._stats["token_errors"] += 1
            return _oauth_error(401, "invalid_client", "Unauthorized")
        if grant_type != "refresh_token":
            self._stats["token_errors"] += 1
            return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        if not refresh_token:
            self._stats["token_errors"] += 1
            return _oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
        if refresh_token in self._revoked:
            self._stats["token_errors"] += 1
            return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        email = self._refresh_tokens.get(refresh_token)
        if email is None and refresh_token.startswith("sandbox:") and "@" in refresh_token:
            email = self.register_account(refresh_token.removeprefix("sandbox:"), refresh_token)[
                "email"
            ]
        if email is None:
            self._stats["token_errors"] += 1
            return _oauth_error(400, "invalid_grant", "Bad Request")
        self._stats["token_refreshes"] += 1
        return web.json_response(
            {
                "access_token": self._issue_access_token(email),
                "expires_in": int(self.access_token_ttl_s),
                "scope": "https://www.googleapis.com/auth/gmail.readonly",
                "token_type": "Bearer",
            }
        )

    # -- control handlers --------------------------------------------------------------------

    async def _control_register(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            created = self.register_account(str(body.get("email", "")), body.get("refresh_token"))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(created, status=201)

    async def _control_expire(self, request: web.Request) -> web.Response:
        return self._on_account(
            request, lambda email: {"expired": self.expire_access_tokens(email)}
        )

    async def _control_revoke(self, request: web.Request) -> web.Response:
        def revoke(email: str) -> dict[str, Any]:
            self.revoke(email)
            return {"revoked": True}

        return self._on_account(request, revoke)

    async def _control_deliver(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        count = int(body.get("count", 1))
        kind = body.get("kind")
        if kind is not None and kind not in KINDS:
            return web.json_response({"error": f"kind must be one of {KINDS}"}, status=400)

        def deliver(email: str) -> dict[str, Any]:
            ids = self.deliver(email, count, kind)
            return {
                "message_ids": ids,
                "history_id": str(self._account(email).latest_history_id),
            }

        return self._on_account(request, deliver)

    async def _control_expire_history(self, request: web.Request) -> web.Response:
        return self._on_account(
            request, lambda email: {"history_id": str(self.expire_history(email))}
        )

    async def _control_facts(self, request: web.Request) -> web.Response:
        message_id = request.match_info["message_id"]
        return self._on_account(
            request, lambda email: self.message_facts(email, message_id).to_json()
        )

    async def _control_quota(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        self.set_quota(body.get("quota_units_per_s"), body.get("rate_limit_403_fraction"))
        return web.json_response(
            {
                "quota_units_per_s": self.quota_units_per_s,
                "rate_limit_403_fraction": self.rate_limit_403_fraction,
            }
        )

    async def _control_faults(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        self.set_faults(float(body.get("server_error_rate", 0.0)))
        return web.json_response({"server_error_rate": self.server_error_rate})

    async def _control_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    def _on_account(
        self, request: web.Request, action: Callable[[str], dict[str, Any]]
    ) -> web.Response:
        try:
            return web.json_response(action(request.match_info["email"]))
        except KeyError as exc:
            return web.json_response({"error": f"unknown: {exc.args[0]}"}, status=404)

    # -- internals ---------------------------------------------------------------------------

    def _account(self, email: str) -> Account:
        account = self._accounts.get(email.strip().lower())
        if account is None:
            raise KeyError(email)
        return account

    def _issue_access_token(self, email: str) -> str:
        token = f"ya29.sbx{self._rng.getrandbits(128):032x}"
        self._access_tokens[token] = _AccessToken(email, self._clock() + self.access_token_ttl_s)
        return token

    def _admit(self, request: web.Request, operation: str) -> Account | web.Response:
        """Authenticate, authorize, inject faults and charge quota, in Gmail's order."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        grant = self._access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None or grant.expires_at <= self._clock():
            self._stats["auth_errors"] += 1
            return _gmail_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token,"
                " login cookie or other valid authentication credential.",
                "authError",
                headers={"WWW-Authenticate": _WWW_AUTHENTICATE},
            )
        account = self._accounts[grant.email]
        user_id = request.match_info["user_id"].lower()
        if user_id not in ("me", account.email):
            return _gmail_error(403, f"Delegation denied for {account.email}", "forbidden")
        if self.server_error_rate and self._rng.random() < self.server_error_rate:
            self._stats["server_errors"] += 1
            return _gmail_error(503, "The service is currently unavailable.", "backendError")
        if not self._take(account, QUOTA_COST[operation]):
            self._stats["quota_errors"] += 1
            if self.rate_limit_403_fraction and self._rng.random() < self.rate_limit_403_fraction:
                return _gmail_error(
                    403, "User-rate limit exceeded.", "userRateLimitExceeded", domain="usageLimits"
                )
            return _gmail_error(
                429,
                "Too many concurrent requests for user.",
                "rateLimitExceeded",
                domain="usageLimits",
            )
        self._materialize(account)
        return account

    def _take(self, account: Account, cost: int) -> bool:
        now = self._clock()
        rate = self.quota_units_per_s
        account.bucket = min(rate, account.bucket + (now - account.bucket_at) * rate)
        account.bucket_at = now
        if account.bucket < cost:
            return False
        account.bucket -= cost
        return True

    def _materialize(self, account: Account) -> None:
        """Deliver the messages `new_messages_per_minute` says have arrived since the last look."""
        if self.new_messages_per_minute <= 0:
            return
        due = int((self._clock() - account.created_at) * self.new_messages_per_minute / 60)
        for _ in range(min(due - account.auto_delivered, 10_000)):
            self._deliver_one(account, None)
            account.auto_delivered += 1

    def _deliver_one(self, account: Account, kind: Kind | None) -> str:
        self._stats["messages_delivered"] += 1
        return account.deliver(self._wall_clock(), kind)

    def _max_results(self, request: web.Request, *, default: int) -> int:
        raw = request.query.get("maxResults")
        if raw is None:
            return default
        value = int(raw)
        if value < 1:
            raise QueryError("Invalid maxResults: must be positive")
        return min(value, 500)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (ValueError, json.JSONDecodeError):
        return {}
    return body if isinstance(body, dict) else {}
