"""`parse_receipt`: a Gmail API message resource (format=full) in, a receipt or a verdict out.

Decisions worth knowing:
- A message is a receipt when its subject names one (קבלה, חשבונית, חשבונית מס, אישור תשלום,
  אישור הזמנה, receipt, invoice, payment confirmation, order confirmation), when it carries a
  PDF named like one (invoice, receipt, קבלה, חשבונית, bill), or when its body names one *and*
  states a labelled total. A newsletter that only mentions invoices in passing is not.
- The vendor is the From display name, else the sender domain's registrable label.
- The issue date is the labelled date in the body, else the Date header's calendar date in the
  sender's own time zone, else `internalDate` in UTC.
- The amount and currency: see `receipt_parsing._money` (number formats, label strengths).
  Amounts are `Decimal`, quantized to cents; never floats.
"""

from __future__ import annotations

import datetime
import re
from email.utils import parsedate_to_datetime
from typing import Any

from longtasks.receipt_parsing._dates import find_issued_date
from longtasks.receipt_parsing._mime import (
    UndecodableBodyError,
    body_text,
    headers_of,
    pdf_attachments,
)
from longtasks.receipt_parsing._money import GERSHAYIM, find_total
from longtasks.receipt_parsing._sender import vendor_from_sender
from longtasks.receipt_parsing.results import MalformedReceipt, NotAReceipt, ParsedReceipt

# Hebrew words take one-letter prefixes (ה, ו, ב, ל, מ, ש, כ): "הקבלה", "לחשבונית".
_HE_PREFIX = "(?<![א-ת])[הובלמשכ]{0,2}"
_RECEIPT_WORDS = re.compile(
    rf"{_HE_PREFIX}(?:קבלה|קבלות|חשבונית|חשבוניות|חשבונית\s+מס)(?![א-ת])"
    rf"|{_HE_PREFIX}אישור\s+(?:ה?תשלום|ה?הזמנה|ה?עסקה)"
    rf"|חשבונית\s+מס{GERSHAYIM}?"
    r"|(?i:\breceipts?\b|\binvoices?\b|\bpayment\s+confirmation\b|\border\s+confirmation\b"
    r"|\bconfirmation\s+of\s+payment\b)"
)
_RECEIPT_FILE = re.compile(r"קבלה|חשבונית|(?i:receipt|invoice|\bbill\b|rechnung|factura)")


def parse_receipt(message: dict[str, Any]) -> ParsedReceipt | NotAReceipt:
    """Read one Gmail message resource.

    Returns `ParsedReceipt` or `NotAReceipt`; raises `MalformedReceipt` when the message looks
    like a receipt but its amount, currency, date, sender or body cannot be read. Pure: no I/O,
    no clock.
    """
    payload = message.get("payload")
    if not isinstance(payload, dict):
        raise MalformedReceipt(
            "no_payload", "the message has no payload (fetch it with format=full)"
        )
    headers = headers_of(payload)
    subject = headers.get("subject", "").strip()
    attachments = pdf_attachments(payload)
    named_as_receipt = bool(_RECEIPT_WORDS.search(subject)) or any(
        _RECEIPT_FILE.search(name) for name in attachments
    )
    try:
        body = body_text(payload)
    except UndecodableBodyError as exc:
        if named_as_receipt:
            raise MalformedReceipt("undecodable_body", str(exc)) from exc
        return NotAReceipt("no receipt wording in the subject and the body cannot be decoded")

    if not named_as_receipt:
        if not _RECEIPT_WORDS.search(body):
            return NotAReceipt("no receipt wording in the subject, body or attachment names")
        try:
            find_total("", body)
        except MalformedReceipt:
            return NotAReceipt("the body mentions receipts but states no total")

    vendor = vendor_from_sender(headers.get("from", ""))
    if not vendor:
        raise MalformedReceipt("no_sender", "the message has no usable From header")
    amount, currency = find_total(subject, body)
    issued_at = (
        find_issued_date(body)
        or _header_date(headers.get("date"))
        or _internal_date(message.get("internalDate"))
    )
    if issued_at is None:
        raise MalformedReceipt("bad_date", "no date in the body, Date header or internalDate")
    return ParsedReceipt(
        gmail_message_id=str(message.get("id", "")),
        vendor=vendor,
        amount=amount,
        currency=currency,
        issued_at=issued_at,
        subject=subject,
        attachments=attachments,
    )


def _header_date(value: str | None) -> datetime.date | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).date()
    except (TypeError, ValueError, IndexError):
        return None


def _internal_date(value: object) -> datetime.date | None:
    try:
        millis = int(str(value))
    except ValueError:
        return None
    return datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.UTC).date()
