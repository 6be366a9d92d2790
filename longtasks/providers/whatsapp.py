"""WhatsApp Cloud API adapter: a Protocol, the real HTTP client (aiohttp), and its error split.

`POST /{version}/{phone_number_id}/messages` with a bearer token and a text or template message.
The Cloud API has **no idempotency key**: its send endpoint reads only Authorization,
Content-Type and User-Agent, so a repeated request is a second message. Each send carries
`biz_opaque_callback_data` instead (the item's key, ids only), which Meta echoes on the status
webhooks of that message. Errors are split the way the send path needs them:
- `WhatsAppRetryable`: the message was not taken (429, Graph errors meaning "try again",
  a connection that never opened): try again later, the whole sender or one recipient waits.
- `WhatsAppAmbiguous`: the request left and no clear answer came back (a timeout, a dropped
  connection, a gateway 5xx without a Graph error, a 200 without a message id). The message may
  have been accepted: the item is `unconfirmed` and is never re-sent blindly.
- `WhatsAppRejected`: this item can never be sent now (not on WhatsApp, opted out, bad template,
  marketing limit); it becomes a failed item with the provider's code.
- `WhatsAppPaused`: the number or template is throttled for quality or blocked (spam limit
  131048, policy blocks): the task stops sending, with a reason.
- `WhatsAppAuthError`: nothing can be sent with this token; the task fails with a clear reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from longtasks.observability.metrics import ProviderMetrics
from longtasks.providers.whatsapp_errors import ErrorClass, classify

# Meta's limit on biz_opaque_callback_data.
CALLBACK_DATA_MAX = 512


@dataclass(frozen=True)
class TextMessage:
    body: str


@dataclass(frozen=True)
class TemplateMessage:
    name: str
    language: str
    params: Sequence[str] = ()


Message = TextMessage | TemplateMessage


@dataclass(frozen=True)
class Sent:
    message_id: str


class WhatsAppError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class WhatsAppRetryable(WhatsAppError):
    """Not sent; the same item may be sent again later."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retry_after_s: float | None = None,
        error_class: ErrorClass = ErrorClass.transient,
    ) -> None:
        super().__init__(code, message)
        self.retry_after_s = retry_after_s
        self.error_class = error_class

    @property
    def per_recipient(self) -> bool:
        return self.error_class is ErrorClass.recipient_throttle

    @property
    def per_sender(self) -> bool:
        return self.error_class is ErrorClass.sender_throttle


class WhatsAppAmbiguous(WhatsAppError):
    """The request may have been accepted: only a status webhook can tell."""


class WhatsAppRejected(WhatsAppError):
    def __init__(
        self, code: str, message: str, *, error_class: ErrorClass = ErrorClass.permanent
    ) -> None:
        super().__init__(code, message)
        self.error_class = error_class


class WhatsAppPaused(WhatsAppError):
    """The sender (or its template) may not send for now; the task stops with the reason."""


class WhatsAppAuthError(WhatsAppError):
    pass


class WhatsAppSender(Protocol):
    async def send(self, *, sender_id: str, to: str, message: Message, callback_data: str) -> Sent:
        """Send one message; raise a `WhatsAppError` subclass on failure.

        `callback_data` travels as `biz_opaque_callback_data` (at most 512 characters, no
        personal data): status webhooks of this message carry it back.
        """
        ...


def message_payload(to: str, message: Message, callback_data: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to.lstrip("+"),
    }
    if isinstance(message, TextMessage):
        payload["type"] = "text"
        payload["text"] = {"preview_url": False, "body": message.body}
    else:
        template: dict[str, Any] = {"name": message.name, "language": {"code": message.language}}
        if message.params:
            template["components"] = [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": p} for p in message.params],
                }
            ]
        payload["type"] = "template"
        payload["template"] = template
    if callback_data is not None:
        if len(callback_data) > CALLBACK_DATA_MAX:
            raise ValueError("biz_opaque_callback_data is limited to 512 characters")
        payload["biz_opaque_callback_data"] = callback_data
    return payload


class WhatsAppCloudClient:
    """The real client. One `aiohttp.ClientSession` per worker, made at start-up and injected.

    aiohttp, not httpx: measured on this 2-core machine it sends ~10x more requests/s.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_version: str,
        access_token: str,
        timeout_s: float = 10.0,
        metrics: ProviderMetrics | None = None,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._version = api_version
        self._headers = {"Authorization": f"Bearer {access_token}"}
        # A connect that times out never sent anything; a timeout after that is ambiguous.
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(timeout_s, 5.0))
        self._metrics = metrics

    async def send(self, *, sender_id: str, to: str, message: Message, callback_data: str) -> Sent:
        url = f"{self._base}/{self._version}/{sender_id}/messages"
        payload = message_payload(to, message, callback_data)
        # Latency and errors by kind (longtasks_provider_*), when the worker hands in metrics.
        with self._metrics.request() if self._metrics else contextlib.nullcontext():
            return await self._post(url, payload)

    async def _post(self, url: str, payload: dict[str, Any]) -> Sent:
        try:
            async with self._session.post(
                url, json=payload, headers=self._headers, timeout=self._timeout
            ) as response:
                body = await _json_or_none(response)
                if response.status < 300:
                    message_id = _message_id(body)
                    if message_id is None:
                        raise WhatsAppAmbiguous(
                            f"http_{response.status}", "an answer without a message id"
                        )
                    return Sent(message_id=message_id)
                raise classify_error(response.status, body, response.headers.get("Retry-After"))
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The connection never opened: nothing reached the provider.
            raise WhatsAppRetryable("network", f"{type(exc).__name__}: {exc}") from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise WhatsAppAmbiguous("no_answer", f"{type(exc).__name__}: {exc}") from exc


def _message_id(body: dict[str, Any] | None) -> str | None:
    messages = (body or {}).get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        value = messages[0].get("id")
        if isinstance(value, str) and value:
            return value
    return None


async def _json_or_none(response: aiohttp.ClientResponse) -> dict[str, Any] | None:
    try:
        data = await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return None
    return data if isinstance(data, dict) else None


def error_kind(exc: BaseException) -> str:
    """The `outcome` label of a failed request in the provider metrics."""
    if isinstance(exc, WhatsAppRetryable):
        return "network" if exc.code == "network" else "retryable"
    if isinstance(exc, WhatsAppAmbiguous):
        return "ambiguous"
    if isinstance(exc, WhatsAppRejected):
        return "rejected"
    if isinstance(exc, WhatsAppPaused):
        return "paused"
    if isinstance(exc, WhatsAppAuthError):
        return "auth"
    return "error"


def classify_error(
    status: int, body: dict[str, Any] | None, retry_after: str | None
) -> WhatsAppError:
    error = (body or {}).get("error")
    if not isinstance(error, dict):
        if status >= 500:
            # A gateway's page, not Meta's Graph error: the request may have been processed.
            return WhatsAppAmbiguous(f"http_{status}", f"HTTP {status} without a Graph error")
        error = {}
    raw_code = error.get("code")
    code = int(raw_code) if isinstance(raw_code, int | str) and str(raw_code).isdigit() else None
    message = str(error.get("message") or f"HTTP {status}")
    code_text = str(code) if code is not None else f"http_{status}"
    error_class = classify(code, status)
    if error_class is ErrorClass.auth:
        return WhatsAppAuthError(code_text, message)
    if error_class is ErrorClass.pause:
        return WhatsAppPaused(code_text, message)
    if error_class in (
        ErrorClass.sender_throttle,
        ErrorClass.recipient_throttle,
        ErrorClass.transient,
    ):
        return WhatsAppRetryable(
            code_text,
            message,
            retry_after_s=_parse_retry_after(retry_after),
            error_class=error_class,
        )
    return WhatsAppRejected(code_text, message, error_class=error_class)


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


async def close_quietly(session: aiohttp.ClientSession) -> None:
    await session.close()
    # Give aiohttp's connector a tick to close its transports (avoids ResourceWarnings).
    await asyncio.sleep(0)
