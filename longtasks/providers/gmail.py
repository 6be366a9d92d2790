"""Gmail API adapter: a Protocol, the real HTTP client (aiohttp), and its error split.

Read-only calls the receipt sync needs: list message ids (with a search query), get one message
(format=full), list `messageAdded` history since a history id, get the profile, and refresh the
OAuth access token.

Errors, by what the caller should do:
- `GmailRateLimited` (429, 403 `rateLimitExceeded`/`userRateLimitExceeded`): retry later. The
  client already waited and retried a bounded number of times before raising it.
- `GmailTransientError` (5xx, timeouts, connection errors, garbled answers): retry later.
- `GmailAuthRevoked` (`invalid_grant`, or a fresh token still refused): give up on this mailbox
  until the user reconnects it.
- `GmailHistoryTooOld` (404 from history.list): incremental sync is impossible; do a full sync.
- `GmailNotFound` (404 for a message): the message was deleted; skip it.
- `GmailRequestError` (any other 4xx, or the OAuth client itself rejected): a bug or a
  misconfiguration; retrying will not help.
Each class says so in `retryable`, so an activity can turn the rest into non-retryable errors.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import aiohttp

# Gmail's per-user quota units for each call we make.
QUOTA_COST: Mapping[str, int] = {"list": 5, "get": 5, "history": 2, "profile": 1}
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


@dataclass
class GmailCredentials:
    """One mailbox's OAuth tokens. The client replaces `access_token` in place when it
    refreshes; callers compare it with what they stored and persist the new one."""

    access_token: str
    refresh_token: str


@dataclass(frozen=True)
class MessageIdPage:
    ids: tuple[str, ...]
    next_page_token: str | None
    result_size_estimate: int = 0


@dataclass(frozen=True)
class HistoryPage:
    """Ids of messages added after the start history id (deduplicated, in history order), and
    the mailbox's current history id: the next sync starts from it once every page is read."""

    message_ids: tuple[str, ...]
    next_page_token: str | None
    history_id: int


@dataclass(frozen=True)
class Profile:
    email: str
    history_id: int
    messages_total: int = 0


class GmailError(Exception):
    retryable: ClassVar[bool] = False

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class GmailRateLimited(GmailError):
    retryable = True

    def __init__(self, code: str, message: str, *, retry_after_s: float) -> None:
        super().__init__(code, message)
        self.retry_after_s = retry_after_s


class GmailTransientError(GmailError):
    retryable = True


class GmailAuthRevoked(GmailError):
    pass


class GmailHistoryTooOld(GmailError):
    pass


class GmailNotFound(GmailError):
    pass


class GmailRequestError(GmailError):
    pass


class GmailApi(Protocol):
    """What the receipt sync needs from Gmail. Every method may raise a `GmailError` subclass;
    any method may refresh `credentials.access_token` in place."""

    async def list_message_ids(
        self,
        credentials: GmailCredentials,
        *,
        query: str | None = None,
        page_token: str | None = None,
        max_results: int = 100,
    ) -> MessageIdPage:
        """One page of message ids matching a Gmail search query, newest first."""
        ...

    async def get_message(self, credentials: GmailCredentials, message_id: str) -> dict[str, Any]:
        """The message resource in format=full (headers, MIME tree, base64url bodies)."""
        ...

    async def list_history(
        self,
        credentials: GmailCredentials,
        *,
        start_history_id: int,
        page_token: str | None = None,
    ) -> HistoryPage:
        """One page of messages added since `start_history_id`; `GmailHistoryTooOld` if Gmail no
        longer has history that old."""
        ...

    async def get_profile(self, credentials: GmailCredentials) -> Profile:
        """The mailbox address and its current history id."""
        ...

    async def refresh(self, credentials: GmailCredentials) -> GmailCredentials:
        """Exchange the refresh token for a new access token (stored in `credentials`)."""
        ...


class QuotaPacer(Protocol):
    async def acquire(self, key: str, units: float) -> None:
        """Return once `units` quota units may be spent on mailbox `key`."""
        ...


class TokenBucketPacer:
    """Per-mailbox token buckets in quota units per second, for one process.

    Reservations may drive a bucket negative; each caller then sleeps for its own debt, so
    waiters are served in arrival order without a lock. The burst is half a second of quota:
    requests paced here arrive at Gmail bunched by network jitter, and Gmail's own bucket must
    not see more than it holds. Several worker processes sharing one mailbox should each get a
    share of the quota (or a shared pacer).
    """

    def __init__(
        self,
        units_per_s: float,
        *,
        burst_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if units_per_s <= 0:
            raise ValueError("units_per_s must be positive")
        self._rate = units_per_s
        self._capacity = units_per_s * burst_s
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    async def acquire(self, key: str, units: float) -> None:
        now = self._clock()
        tokens, at = self._buckets.get(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - at) * self._rate) - units
        self._buckets[key] = (tokens, now)
        if tokens < 0:
            await self._sleep(-tokens / self._rate)


class GmailHttpClient:
    """The real client (also used against `sandbox.gmail`). One `aiohttp.ClientSession` per
    worker, made at start-up and injected.

    On 401 it refreshes the access token once and retries. On rate limiting it backs off
    exponentially with jitter, honoring Retry-After, up to `max_rate_limit_retries` times.
    Calls are paced per mailbox (keyed by refresh token) by `pacer`, by default a
    `TokenBucketPacer(quota_units_per_s)`.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        quota_units_per_s: float,
        *,
        pacer: QuotaPacer | None = None,
        max_rate_limit_retries: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 32.0,
        timeout_s: float = 30.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/") + "/gmail/v1/users/me"
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._pacer = pacer or TokenBucketPacer(quota_units_per_s, sleep=sleep)
        self._max_retries = max_rate_limit_retries
        self._backoff_base = backoff_base_s
        self._backoff_max = backoff_max_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._refresh_locks: dict[str, asyncio.Lock] = {}

    async def list_message_ids(
        self,
        credentials: GmailCredentials,
        *,
        query: str | None = None,
        page_token: str | None = None,
        max_results: int = 100,
    ) -> MessageIdPage:
        params: dict[str, str] = {"maxResults": str(max_results)}
        if query:
            params["q"] = query
        if page_token:
            params["pageToken"] = page_token
        body = await self._call(credentials, "list", "/messages", params)
        return MessageIdPage(
            ids=tuple(str(m["id"]) for m in body.get("messages") or ()),
            next_page_token=body.get("nextPageToken") or None,
            result_size_estimate=int(body.get("resultSizeEstimate") or 0),
        )

    async def get_message(self, credentials: GmailCredentials, message_id: str) -> dict[str, Any]:
        return await self._call(credentials, "get", f"/messages/{message_id}", {"format": "full"})

    async def list_history(
        self,
        credentials: GmailCredentials,
        *,
        start_history_id: int,
        page_token: str | None = None,
    ) -> HistoryPage:
        params = {"startHistoryId": str(start_history_id), "historyTypes": "messageAdded"}
        if page_token:
            params["pageToken"] = page_token
        body = await self._call(credentials, "history", "/history", params)
        seen: dict[str, None] = {}
        for record in body.get("history") or ():
            for added in record.get("messagesAdded") or ():
                seen.setdefault(str(added["message"]["id"]), None)
        return HistoryPage(
            message_ids=tuple(seen),
            next_page_token=body.get("nextPageToken") or None,
            history_id=int(body["historyId"]),
        )

    async def get_profile(self, credentials: GmailCredentials) -> Profile:
        body = await self._call(credentials, "profile", "/profile", {})
        return Profile(
            email=str(body["emailAddress"]),
            history_id=int(body["historyId"]),
            messages_total=int(body.get("messagesTotal") or 0),
        )

    async def refresh(self, credentials: GmailCredentials) -> GmailCredentials:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": credentials.refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        try:
            async with self._session.post(
                self._token_url, data=form, timeout=self._timeout
            ) as response:
                body = await _json_or_none(response)
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise GmailTransientError("network", f"{type(exc).__name__}: {exc}") from exc
        if status == 200 and body is not None and body.get("access_token"):
            credentials.access_token = str(body["access_token"])
            return credentials
        error = str((body or {}).get("error", ""))
        description = str((body or {}).get("error_description", f"HTTP {status}"))
        if error == "invalid_grant":
            raise GmailAuthRevoked(error, description)
        if status >= 500 or status == 429:
            raise GmailTransientError(f"token_http_{status}", description)
        raise GmailRequestError(error or f"token_http_{status}", description)

    # -- internals ---------------------------------------------------------------------------

    async def _call(
        self, credentials: GmailCredentials, operation: str, path: str, params: dict[str, str]
    ) -> dict[str, Any]:
        if not credentials.access_token:
            await self._refresh_once(credentials, stale_token="")
        refreshed = False
        attempt = 0
        while True:
            await self._pacer.acquire(credentials.refresh_token, QUOTA_COST[operation])
            sent_token = credentials.access_token
            status, body, retry_after = await self._get(path, params, sent_token)
            if status == 200 and body is not None:
                return body
            reason = _reason(body)
            if status == 401:
                if refreshed:
                    raise GmailAuthRevoked("unauthorized", "a freshly refreshed token was refused")
                await self._refresh_once(credentials, stale_token=sent_token)
                refreshed = True
                continue
            if status == 429 or (status == 403 and reason in _RATE_LIMIT_REASONS):
                delay = self._backoff(attempt, retry_after)
                if attempt >= self._max_retries:
                    raise GmailRateLimited(
                        reason or "rateLimitExceeded",
                        f"{operation} still rate limited after {attempt} retries",
                        retry_after_s=delay,
                    )
                attempt += 1
                await self._sleep(delay)
                continue
            raise _classify(operation, status, reason, body)

    async def _get(
        self, path: str, params: dict[str, str], access_token: str
    ) -> tuple[int, dict[str, Any] | None, float | None]:
        headers = {"Authorization": f"Bearer {access_token}"}
        try:
            async with self._session.get(
                self._base + path, params=params, headers=headers, timeout=self._timeout
            ) as response:
                body = await _json_or_none(response)
                return response.status, body, _retry_after(response.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise GmailTransientError("network", f"{type(exc).__name__}: {exc}") from exc

    async def _refresh_once(self, credentials: GmailCredentials, *, stale_token: str) -> None:
        # Concurrent calls that all hit 401 share one refresh rather than each spending one.
        lock = self._refresh_locks.setdefault(credentials.refresh_token, asyncio.Lock())
        async with lock:
            if credentials.access_token == stale_token:
                await self.refresh(credentials)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(self._backoff_max, self._backoff_base * 2.0**attempt)
        # "Equal jitter": at least half the exponential step, so retries still spread out.
        delay = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        return max(delay, retry_after or 0.0)


def _reason(body: dict[str, Any] | None) -> str:
    error = (body or {}).get("error")
    if not isinstance(error, dict):
        return ""
    errors = error.get("errors") or [{}]
    return str(errors[0].get("reason", "")) if isinstance(errors[0], dict) else ""


def _message(body: dict[str, Any] | None, status: int) -> str:
    error = (body or {}).get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return f"HTTP {status}"


def _classify(operation: str, status: int, reason: str, body: dict[str, Any] | None) -> GmailError:
    message = _message(body, status)
    if status == 200:
        return GmailTransientError("bad_response", "a 200 answer without a JSON object")
    if status == 404 and operation == "history":
        return GmailHistoryTooOld(reason or "notFound", message)
    if status == 404:
        return GmailNotFound(reason or "notFound", message)
    if status >= 500 or status == 408:
        return GmailTransientError(reason or f"http_{status}", message)
    return GmailRequestError(reason or f"http_{status}", message)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def _json_or_none(response: aiohttp.ClientResponse) -> dict[str, Any] | None:
    try:
        data = await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return None
    return data if isinstance(data, dict) else None
