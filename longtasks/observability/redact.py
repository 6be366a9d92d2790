"""What never reaches a log line: credentials in URLs and headers, tokens and tickets wherever
they appear, email addresses and phone numbers.

Applied to the whole formatted line (message, context fields, tracebacks), by both formatters,
so a URL logged by uvicorn's access log, httpx or an exception message is covered the same way.
"""

from __future__ import annotations

import re

# Query parameters that carry a credential (ours, OAuth's, Meta's webhook handshake).
_CREDENTIAL_PARAMS = (
    "access_token|refresh_token|id_token|token|ticket|api_key|key|secret|client_secret"
    "|password|signature|sig|code|hub\\.verify_token"
)
_QUERY_SECRET = re.compile(rf"(?i)([?&;](?:{_CREDENTIAL_PARAMS})=)[^&;\s\"'#]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_TICKET = re.compile(r"\bt1\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}")
# Linear on any line: a local part starts only where a run of its characters starts, and the
# run is taken whole (possessive), so a long run without an "@" (a percent-encoded query
# value, 60k characters of it) is read once, not once per position: quadratic backtracking
# here held the event loop for seconds per access-log line of such a request.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})")
# E.164 (+ and 8 to 15 digits), and Israeli local forms like 052-3456789 (the default region).
_PHONE_E164 = re.compile(r"(?<![\w+])\+[1-9]\d{7,14}\b")
_PHONE_LOCAL = re.compile(r"(?<![\w.-])0\d{1,2}-?\d{7}\b")


def redact(text: str) -> str:
    text = _QUERY_SECRET.sub(r"\1[redacted]", text)
    text = _BEARER.sub(r"\1[redacted]", text)
    text = _JWT.sub("[redacted-jwt]", text)
    text = _TICKET.sub("[redacted-ticket]", text)
    text = _EMAIL.sub(r"***@\1", text)
    text = _PHONE_E164.sub("[phone]", text)
    return _PHONE_LOCAL.sub("[phone]", text)
