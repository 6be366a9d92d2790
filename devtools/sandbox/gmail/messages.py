"""A generated message as Gmail serves it: the message resource (`format=full`), its MIME parts
and attachments, and the facts a parser should read from it.

Bodies come as Gmail sends them: multipart/alternative (text and HTML from the same rows) or
HTML only, in UTF-8 or windows-1255 as labelled (except the malformed `undecodable_body`), with
a PDF receipt and a logo as attachments fetched by id. The Date header is in the sender's time
zone; the issue date a parser should report is the body's, else that local date.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import re
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from devtools.sandbox.gmail.corpus import CENT, Kind, MessageSpec, money

_HE_MONTHS = (
    "ינואר", "פברואר", "מרץ", "אפריל", "מאי", "יוני", "יולי", "אוגוסט", "ספטמבר", "אוקטובר",
    "נובמבר", "דצמבר",
)  # fmt: skip
_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class MessageFacts:
    """What the generator made message `message_id`, and what a parser should read from it."""

    message_id: str
    index: int
    kind: Kind
    subject: str
    vendor: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    issued_at: datetime.date | None = None
    attachments: tuple[str, ...] = ()
    malformed_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["amount"] = None if self.amount is None else str(self.amount)
        out["issued_at"] = None if self.issued_at is None else self.issued_at.isoformat()
        out["attachments"] = list(self.attachments)
        return out


@dataclass(frozen=True)
class RenderedMessage:
    message: dict[str, Any]
    facts: MessageFacts


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def render(
    spec: MessageSpec, message_id: str, ts: float, history_id: int, to: str
) -> RenderedMessage:
    utc = datetime.datetime.fromtimestamp(ts, tz=datetime.UTC)
    local = utc.astimezone(_zone_offset(spec.zone, utc))
    issued = local.date() - datetime.timedelta(days=spec.issued_days_before)
    if spec.date_label is None:
        issued = local.date()
    plain, page = _body(spec, issued)
    encoding = spec.charset
    if spec.malformed_code == "undecodable_body":
        encoding, declared = "windows-1255", "utf-8"
    else:
        declared = encoding
        try:
            plain.encode(encoding)
            page.encode(encoding)
        except UnicodeEncodeError:
            encoding = declared = "utf-8"

    def text_part(mime_type: str, text: str, part_id: str) -> dict[str, Any]:
        data = text.encode(encoding)
        return {
            "partId": part_id,
            "mimeType": mime_type,
            "filename": "",
            "headers": [
                {"name": "Content-Type", "value": f'{mime_type}; charset="{declared}"'},
                {"name": "Content-Transfer-Encoding", "value": "quoted-printable"},
            ],
            "body": {"size": len(data), "data": b64(data)},
        }

    if spec.html_only:
        content = text_part("text/html", page, "0")
    else:
        content = {
            "partId": "0",
            "mimeType": "multipart/alternative",
            "filename": "",
            "headers": [{"name": "Content-Type", "value": 'multipart/alternative; boundary="alt"'}],
            "body": {"size": 0},
            "parts": [text_part("text/plain", plain, "0.0"), text_part("text/html", page, "0.1")],
        }
    files: list[dict[str, Any]] = []
    if spec.pdf_name:
        files.append(
            _attachment_part(message_id, spec.pdf_name, "application/pdf", str(len(files) + 1))
        )
    if spec.with_logo:
        files.append(_attachment_part(message_id, "logo.png", "image/png", str(len(files) + 1)))
    payload: dict[str, Any]
    if files:
        payload = {
            "partId": "",
            "mimeType": "multipart/mixed",
            "filename": "",
            "headers": [{"name": "Content-Type", "value": 'multipart/mixed; boundary="mixed"'}],
            "body": {"size": 0},
            "parts": [content, *files],
        }
    else:
        payload = content
    _number_parts(payload, "")

    from_value = spec.sender_address
    if spec.sender_display:
        quoted = spec.sender_display.replace("\\", "\\\\").replace('"', '\\"')
        from_value = f'"{quoted}" <{spec.sender_address}>'
    date_header = local.strftime("%a, %d %b %Y %H:%M:%S %z")
    headers: list[dict[str, str]] = [
        {"name": "Delivered-To", "value": to},
        {
            "name": "Received",
            "value": f"by 2002:a05:sandbox with SMTP id {message_id}; {date_header}",
        },
        {"name": "MIME-Version", "value": "1.0"},
        {"name": "Date", "value": date_header},
        {"name": "From", "value": from_value},
        {"name": "To", "value": to},
        {"name": "Subject", "value": spec.subject},
        {
            "name": "Message-ID",
            "value": f"<{message_id}.{spec.doc_number}@{spec.sender_address.split('@')[1]}>",
        },
    ]
    if spec.kind == "newsletter":
        headers.append(
            {
                "name": "List-Unsubscribe",
                "value": f"<mailto:unsubscribe@{spec.sender_address.split('@')[1]}>",
            }
        )
    payload["headers"] = headers + payload["headers"]
    snippet = re.sub(r"\s+", " ", plain).strip()[:140]
    labels = [
        "INBOX",
        "UNREAD",
        "CATEGORY_PROMOTIONS" if spec.kind == "newsletter" else "CATEGORY_UPDATES",
    ]
    message = {
        "id": message_id,
        "threadId": message_id,
        "labelIds": labels,
        "snippet": html.escape(snippet),
        "historyId": str(history_id),
        "internalDate": str(int(ts * 1000)),
        "sizeEstimate": len(plain.encode()) + len(page.encode()) + (48_000 if spec.pdf_name else 0),
        "payload": payload,
    }
    attachments = (spec.pdf_name,) if spec.pdf_name else ()
    if spec.kind == "newsletter":
        facts = MessageFacts(message_id, -1, "newsletter", spec.subject)
    elif spec.kind == "malformed":
        facts = MessageFacts(
            message_id, -1, "malformed", spec.subject, attachments=attachments,
            malformed_code=spec.malformed_code,
        )  # fmt: skip
    else:
        facts = MessageFacts(
            message_id, -1, "receipt", spec.subject, vendor=spec.expected_vendor,
            amount=spec.total.quantize(CENT), currency=spec.currency, issued_at=issued,
            attachments=attachments,
        )  # fmt: skip
    return RenderedMessage(message, facts)


def _number_parts(part: dict[str, Any], part_id: str) -> None:
    part["partId"] = part_id
    for number, child in enumerate(part.get("parts", [])):
        _number_parts(child, f"{part_id}.{number}" if part_id else str(number))


def walk_parts(part: dict[str, Any]) -> list[dict[str, Any]]:
    out = [part]
    for child in part.get("parts", []):
        out.extend(walk_parts(child))
    return out


def _attachment_id(message_id: str, filename: str) -> str:
    digest = hashlib.sha256(f"{message_id}/{filename}".encode()).digest()
    return "ANGjdJ" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _attachment_part(
    message_id: str, filename: str, mime_type: str, part_id: str
) -> dict[str, Any]:
    return {
        "partId": part_id,
        "mimeType": mime_type,
        "filename": filename,
        "headers": [
            {"name": "Content-Type", "value": f'{mime_type}; name="{filename}"'},
            {"name": "Content-Disposition", "value": f'attachment; filename="{filename}"'},
            {"name": "Content-Transfer-Encoding", "value": "base64"},
        ],
        "body": {
            "attachmentId": _attachment_id(message_id, filename),
            "size": len(attachment_bytes(filename)),
        },
    }


def attachment_bytes(filename: str) -> bytes:
    if filename.endswith(".pdf"):
        return (
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% sandbox document "
            + filename.encode()
            + b"\ntrailer << /Root 1 0 R >>\n%%EOF\n"
        )
    return b"\x89PNG\r\n\x1a\n" + hashlib.sha256(filename.encode()).digest()


def _body(spec: MessageSpec, issued: datetime.date) -> tuple[str, str]:
    """The text/plain and text/html bodies, from the same rows."""
    he = spec.language == "he"
    if spec.kind == "newsletter":
        rows: list[tuple[str, str]] = [("", line) for line in spec.newsletter_lines]
        footer = "להסרה מרשימת התפוצה לחצו כאן" if he else "Unsubscribe from these emails"
        rows.append(("", footer))
        return _plain(rows), _html(spec, rows)

    name = spec.sender_display or spec.expected_vendor or ""
    if spec.malformed_code == "no_amount":
        if he:
            rows = [
                ("", f"שלום {spec.customer},"),
                ("", f"מצורפת חשבונית מס מספר {spec.doc_number} עבור השירות שקיבלת."),
                ("", f"בברכה, {name}"),
            ]
        else:
            rows = [
                ("", f"Hi {spec.customer},"),
                ("", f"Please find invoice {spec.doc_number} attached."),
                ("", f"Thanks, {name}"),
            ]
        return _plain(rows), _html(spec, rows)

    if he:
        title = "חשבונית מס קבלה" if spec.doc_number % 2 else "קבלה"
        rows = [
            ("", f"שלום {spec.customer},"),
            ("", f"תודה שבחרת ב-{name}."),
            ("", f"{title} מספר {spec.doc_number}"),
        ]
    else:
        rows = [
            ("", f"Hi {spec.customer},"),
            ("", f"Thanks for your purchase from {name}."),
            ("", f"{'Invoice' if spec.doc_number % 2 else 'Receipt'} #{spec.doc_number}"),
        ]
    if spec.date_label is not None:
        stated = "00/00/0000" if spec.malformed_code == "bad_date" else _format_date(spec, issued)
        rows.append((spec.date_label, stated))
    rows.extend((label, money(spec, amount)) for label, amount in spec.lines)
    rows.append((spec.total_label, money(spec, spec.total)))
    if he:
        rows.append(("אמצעי תשלום", f"כרטיס אשראי המסתיים ב-{spec.card_last4}"))
        rows.append(("", "המסמך הופק באופן ממוחשב."))
    else:
        rows.append(("Payment method", f"Visa ending in {spec.card_last4}"))
        rows.append(("", f"Questions? Contact support@{spec.sender_address.split('@')[1]}."))
    return _plain(rows), _html(spec, rows)


def _plain(rows: list[tuple[str, str]]) -> str:
    return "\n".join(f"{label}: {value}" if label else value for label, value in rows) + "\n"


def _html(spec: MessageSpec, rows: list[tuple[str, str]]) -> str:
    he = spec.language == "he"
    cells = "".join(
        f"<tr><td class='l'>{html.escape(label)}</td><td class='v'>{html.escape(value)}</td></tr>"
        if label
        else f"<tr><td colspan='2'>{html.escape(value)}</td></tr>"
        for label, value in rows
    )
    return (
        f"<!DOCTYPE html><html dir='{'rtl' if he else 'ltr'}' lang='{spec.language}'><head>"
        f"<meta charset='{spec.charset}'><title>{html.escape(spec.subject)}</title>"
        "<style>td.l{font-weight:bold;padding:4px 12px} td.v{text-align:end}</style></head>"
        f"<body><div class='card'><h2>{html.escape(spec.sender_display or '')}</h2>"
        f"<table role='presentation'>\n{cells}\n</table></div></body></html>"
    )


def _zone_offset(zone: str, when: datetime.datetime) -> datetime.timezone:
    summer = 4 <= when.month <= 10
    hours = {"IL": 3 if summer else 2, "US": -7 if summer else -8, "EU": 2 if summer else 1}
    return datetime.timezone(datetime.timedelta(hours=hours.get(zone, 0)))


def _format_date(spec: MessageSpec, day: datetime.date) -> str:
    if spec.language == "he":
        formats = (
            f"{day:%d/%m/%Y}",
            f"{day:%d.%m.%Y}",
            f"{day:%Y-%m-%d}",
            f"{day.day} ב{_HE_MONTHS[day.month - 1]} {day.year}",
        )
    else:
        month = _EN_MONTHS[day.month - 1]
        formats = (
            f"{month} {day.day}, {day.year}",
            f"{day.day} {month[:3]} {day.year}",
            f"{day:%Y-%m-%d}",
            f"{month[:3]} {day.day}, {day.year}",
        )
    return formats[spec.date_format]
