"""What a WhatsApp Cloud API error means for the send path, from Meta's error-codes table.

Errors arrive "synchronously as a Graph API response, asynchronously via Webhook, or sometimes
through both" (Meta). Each code is put in one class, which decides what happens next:

| class | codes | what the send path does |
| --- | --- | --- |
| `sender_throttle` | 130429, 80007, 4 | not sent; every worker backs off that sender number |
| `recipient_throttle` | 131056 | not sent; only that recipient waits, the page goes on |
| `transient` | 1, 2, 131000, 131016, 131057 | not sent ("Try again"); retried with backoff |
| `pause` | 131048, 132015, 132016, 132007, 131031, 368, 131042 | the task stops sending |
| `marketing_limit` | 131049 | failed; no send to that recipient for 24 hours |
| `opted_out` | 131050 | failed; the recipient joins the business's suppression list |
| `auth` | 190, 10, 200 (and HTTP 401) | nothing can be sent with this token: the task fails |
| `permanent` | 131026, 131047, other 132xxx, 100, any other code | failed with the code |

Meta counts 132015/132016/132007 among template errors; they name a template paused or
blocked for quality or policy, so every later item would fail the same way: the task pauses
with the reason instead of failing item by item.

An answer without a Graph error body (a gateway's 502/504 page, a dropped connection, a
timeout) is not in this table: it is ambiguous, the message may have been accepted.
"""

from __future__ import annotations

import enum


class ErrorClass(enum.StrEnum):
    sender_throttle = "sender_throttle"
    recipient_throttle = "recipient_throttle"
    transient = "transient"
    pause = "pause"
    marketing_limit = "marketing_limit"
    opted_out = "opted_out"
    auth = "auth"
    permanent = "permanent"


_CLASSES: dict[int, ErrorClass] = {
    130429: ErrorClass.sender_throttle,  # throughput reached for the number
    80007: ErrorClass.sender_throttle,  # WhatsApp Business Account rate limit
    4: ErrorClass.sender_throttle,  # application request limit
    131056: ErrorClass.recipient_throttle,  # pair rate limit: same business, same user
    1: ErrorClass.transient,  # API unknown
    2: ErrorClass.transient,  # temporary downtime or overload
    131000: ErrorClass.transient,  # something went wrong
    131016: ErrorClass.transient,  # service unavailable
    131057: ErrorClass.transient,  # account in maintenance mode (e.g. throughput upgrade)
    131048: ErrorClass.pause,  # spam rate limit: the number's quality is low
    132015: ErrorClass.pause,  # template paused for low quality
    132016: ErrorClass.pause,  # template disabled for low quality
    132007: ErrorClass.pause,  # template content violates a policy
    131031: ErrorClass.pause,  # business account locked
    368: ErrorClass.pause,  # temporarily blocked for policy violations
    131042: ErrorClass.pause,  # payment problem
    131049: ErrorClass.marketing_limit,  # healthy-ecosystem limit: wait 24 h before resending
    131050: ErrorClass.opted_out,  # the user stopped marketing messages
    190: ErrorClass.auth,  # access token expired or invalid
    10: ErrorClass.auth,  # permission denied
    200: ErrorClass.auth,  # permission not granted
}

# Meta: "wait at least 24 hours before resending"; sooner only fails again.
MARKETING_LIMIT_HOLD_S = 24 * 3600


def classify(code: int | None, http_status: int) -> ErrorClass:
    """The class of a Graph API error (`code` from its body; None when it had none)."""
    if code is not None and code in _CLASSES:
        return _CLASSES[code]
    if http_status == 401:
        return ErrorClass.auth
    if http_status == 429:
        return ErrorClass.sender_throttle
    if http_status >= 500:
        # Meta's application layer answered with an error object: the message was not taken.
        return ErrorClass.transient
    return ErrorClass.permanent


def is_retryable(error_class: ErrorClass) -> bool:
    return error_class in (
        ErrorClass.sender_throttle,
        ErrorClass.recipient_throttle,
        ErrorClass.transient,
    )
