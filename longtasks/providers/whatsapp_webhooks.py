"""Meta's WhatsApp webhooks: the signature, and what a notification says.

Meta signs each POST with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body keyed
with the App Secret>`; it is checked over the bytes as received, before any parsing.

A notification is `entry[].changes[].value`, each value naming the business number it concerns
(`metadata.phone_number_id`) and carrying `statuses[]` (what became of messages we sent) and/or
`messages[]` (what users wrote to us). All three levels are arrays and Meta batches, so every
level is walked. Anything malformed inside a well-formed notification is skipped and counted,
never an error: Meta would retry it for 7 days.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from longtasks.contracts.messages import parse_callback_data
from longtasks.domain import Delivery

_RANKS = {
    "sent": Delivery.accepted,
    "failed": Delivery.failed,
    "delivered": Delivery.delivered,
    "read": Delivery.read,
}
# What a user writes to stop messages from a business: "STOP", and Hebrew "הסר" (remove).
STOP_WORDS = frozenset({"stop", "הסר"})


@dataclass(frozen=True)
class StatusUpdate:
    """One entry of a webhook's `statuses[]`, as this service reads it."""

    wamid: str
    delivery: Delivery
    status: str  # Meta's word: sent, delivered, read, failed
    occurred_at: dt.datetime
    phone_number_id: str
    callback: str | None = None
    # From `callback` when it is one of our item keys.
    task_id: int | None = None
    item_key: str | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class InboundText:
    """A user's text (or button) message to a business number."""

    phone_number_id: str
    sender: str  # the user's number in E.164 (`+` and digits)
    text: str

    @property
    def is_stop(self) -> bool:
        return normalized_word(self.text) in STOP_WORDS


@dataclass
class Notification:
    statuses: list[StatusUpdate] = field(default_factory=list)
    inbound: list[InboundText] = field(default_factory=list)
    skipped: int = 0


class MalformedWebhook(ValueError):
    pass


def signature_valid(app_secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def normalized_word(text: str) -> str:
    """A reply reduced to its word: case, width, spaces and punctuation around it dropped."""
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    return folded.strip(" \t\r\n.!?,;:'\"()[]-־׳״")


def parse(body: bytes) -> Notification:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedWebhook("the body is not JSON") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise MalformedWebhook("not a WhatsApp Business Account notification")
    out = Notification()
    for entry in payload["entry"]:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            out.skipped += 1
            continue
        for change in changes:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                out.skipped += 1
                continue
            metadata = value.get("metadata")
            number = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
            if not isinstance(number, str) or not number or len(number) > 64:
                out.skipped += 1
                continue
            _read_statuses(value.get("statuses"), number, out)
            _read_messages(value.get("messages"), number, out)
    return out


def _read_statuses(statuses: Any, number: str, out: Notification) -> None:
    if statuses is None:
        return
    if not isinstance(statuses, list):
        out.skipped += 1
        return
    for item in statuses:
        status = _status(item, number)
        if status is None:
            out.skipped += 1
        else:
            out.statuses.append(status)


def _status(item: Any, number: str) -> StatusUpdate | None:
    if not isinstance(item, dict):
        return None
    wamid, word = item.get("id"), item.get("status")
    if not isinstance(wamid, str) or not 0 < len(wamid) <= 200 or not wamid.isprintable():
        return None
    if not isinstance(word, str) or word not in _RANKS:
        return None  # e.g. `played` (voice messages): not a delivery state
    occurred_at = _timestamp(item.get("timestamp"))
    if occurred_at is None:
        return None
    callback = item.get("biz_opaque_callback_data")
    if not isinstance(callback, str) or len(callback) > 512 or "\x00" in callback:
        callback = None
    parsed = parse_callback_data(callback)
    return StatusUpdate(
        wamid=wamid,
        delivery=_RANKS[word],
        status=word,
        occurred_at=occurred_at,
        phone_number_id=number,
        callback=callback,
        task_id=parsed[0] if parsed else None,
        item_key=parsed[1] if parsed else None,
        error_code=_error_code(item.get("errors")) if word == "failed" else None,
    )


def _timestamp(value: Any) -> dt.datetime | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        seconds = int(value)
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12:
        seconds = value
    else:
        return None
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _error_code(errors: Any) -> str:
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            return str(code)
        if isinstance(code, str) and code.isascii() and code.isdigit() and len(code) < 20:
            return code
    return "failed"


def _read_messages(messages: Any, number: str, out: Notification) -> None:
    if messages is None:
        return
    if not isinstance(messages, list):
        out.skipped += 1
        return
    for message in messages:
        inbound = _inbound(message, number)
        if inbound is not None:
            out.inbound.append(inbound)


def _inbound(message: Any, number: str) -> InboundText | None:
    if not isinstance(message, dict):
        return None
    sender = message.get("from")
    if not isinstance(sender, str) or not sender.isascii() or not sender.isdigit():
        return None
    if not 6 <= len(sender) <= 15:
        return None
    text: Any = None
    if message.get("type") == "text" and isinstance(message.get("text"), dict):
        text = message["text"].get("body")
    elif message.get("type") == "button" and isinstance(message.get("button"), dict):
        text = message["button"].get("text")
    if not isinstance(text, str) or len(text) > 4096:
        return None
    return InboundText(phone_number_id=number, sender=f"+{sender}", text=text)
