"""A sandbox Gmail API (aiohttp.web) for dev mode, tests and benchmarks.

It speaks the REST shape of the real service, so `providers.gmail.GmailHttpClient` talks to it
unchanged:

- `GET  /gmail/v1/users/{userId}/messages?q=&pageToken=&maxResults=` (newest first)
- `GET  /gmail/v1/users/{userId}/messages/{id}?format=full|metadata|minimal`
- `GET  /gmail/v1/users/{userId}/messages/{id}/attachments/{attachmentId}`
- `GET  /gmail/v1/users/{userId}/profile`
- `GET  /gmail/v1/users/{userId}/history?startHistoryId=&pageToken=&maxResults=`
- `POST /oauth2/token` (form: grant_type=refresh_token, refresh_token, client_id, client_secret)

Accounts. The mailbox's owner is the account the bearer token was issued to; `userId` is `me`
or that address. An account exists once registered (`POST /sandbox/gmail/accounts` or
`register_account()`), which answers a refresh token and a first access token. For dev mode a
refresh token spelled `sandbox:<email>` needs no registration: the token endpoint registers it on
first use. Any other unknown, or a revoked, refresh token gets `invalid_grant`.

Mailbox. `mailbox_size` messages per account, spread over the two years ending on `newest_date`
(default 2025-06-30, fixed so content is reproducible), plus messages delivered later
(control call, or `new_messages_per_minute`) dated by the wall clock. Message *i* is generated on
demand from a RNG seeded with (seed, email, i): about 80% receipts (Hebrew or English, Israeli and
international vendors, ₪/ש"ח/NIS/ILS/$/USD/€/EUR, thousands separators, European decimal commas),
14% newsletters, 6% malformed receipts (no amount, an impossible date, a body in windows-1255
labelled UTF-8). `message_facts()` says what each message is and what a parser should read.

Search (`q`), a subset of Gmail's: `after:`/`before:` (YYYY/MM/DD, YYYY-MM-DD or epoch seconds;
dates are UTC midnights, where Gmail uses Pacific time), `newer_than:`/`older_than:` (Nd, Nm,
Ny), `from:` (substring of the From header), `subject:`, `has:attachment`, `filename:`, free
words and "quoted phrases" (substring of the subject, case-insensitive), `-term` negation,
`a OR b`, `{a b}`; parentheses are dropped (OR binds adjacent terms), and `in:`, `label:`,
`is:`, `category:` are accepted and ignored. `resultSizeEstimate` is an estimate, as in Gmail.

History. Every delivered message adds one `messageAdded` record with a larger history id. A
`startHistoryId` older than the retained window (the last `history_retention` records, or
everything before an `expire_history` call) answers 404, as Gmail does after about a week.

Quota. Per-account token bucket of `quota_units_per_s` units refilled per second, one second of
burst; costs are Gmail's (messages.list 5, messages.get 5, attachments.get 5, history.list 2,
getProfile 1). Over quota: 429 `rateLimitExceeded`, or with probability
`rate_limit_403_fraction` a 403 `userRateLimitExceeded`.

Control endpoints (no auth; JSON in and out):
- `POST /sandbox/gmail/accounts` {email, refresh_token?} -> 201 {email, refresh_token,
  access_token, expires_in, history_id}
- `POST /sandbox/gmail/accounts/{email}/expire_access_tokens` -> {expired}
- `POST /sandbox/gmail/accounts/{email}/revoke` -> {revoked: true}
- `POST /sandbox/gmail/accounts/{email}/deliver` {count, kind?} -> {message_ids, history_id}
- `POST /sandbox/gmail/accounts/{email}/expire_history` -> {history_id}
- `GET  /sandbox/gmail/accounts/{email}/messages/{id}/facts` -> the generator's facts
- `PUT  /sandbox/gmail/quota` {quota_units_per_s?, rate_limit_403_fraction?}
- `PUT  /sandbox/gmail/faults` {server_error_rate}
- `GET  /sandbox/gmail/stats`
"""

from __future__ import annotations

import base64
import bisect
import datetime
import functools
import hashlib
import html
import json
import math
import random
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

from aiohttp import web

Kind = Literal["receipt", "newsletter", "malformed"]
KINDS: tuple[Kind, ...] = ("receipt", "newsletter", "malformed")

QUOTA_COST = {"list": 5, "get": 5, "attachment": 5, "history": 2, "profile": 1}
DEFAULT_NEWEST_DATE = datetime.date(2025, 6, 30)
_SPAN_S = 730 * 86400.0
_DAY_S = 86400.0
_CENT = Decimal("0.01")


# ---------------------------------------------------------------------------------------------
# What the mailbox is made of


@dataclass(frozen=True)
class _Vendor:
    display: str | None  # None: the From header is a bare address
    address: str
    expected_vendor: str  # what a parser should report
    language: Literal["he", "en"]
    currencies: tuple[str, ...]
    low: float
    high: float
    items: tuple[str, ...]
    zone: str  # IL, US, EU or UTC: the sender's time zone rules


# display name (- for a bare address) | address | language | currencies | amount range | zone |
# items | the vendor a parser should report when there is no display name
_VENDOR_TABLE = """
בזק | invoices@bezeq.co.il | he | ILS | 60-450 | IL | חבילת אינטרנט סיבים; קו טלפון
חברת החשמל | noreply@iec.co.il | he | ILS | 180-3200 | IL | חשבון חשמל תקופתי
סלקום | billing@cellcom.co.il | he | ILS | 29-260 | IL | חבילת סלולר; נדידה
פרטנר | no-reply@partner.co.il | he | ILS | 35-300 | IL | מנוי TV; סלולר
שופרסל אונליין | online@shufersal.co.il | he | ILS | 120-2400 | IL | הזמנת סופר; משלוח
סופר-פארם | receipts@super-pharm.co.il | he | ILS | 25-900 | IL | מוצרי טיפוח; תרופות
Wolt | info@wolt.com | he | ILS | 45-420 | IL | ארוחת ערב; דמי משלוח
פנגו | service@pango.co.il | he | ILS | 4-80 | IL | חניה
עיריית תל אביב-יפו | arnona@tel-aviv.gov.il | he | ILS | 600-5200 | IL | ארנונה דו-חודשית
- | noreply@10bis.co.il | he | ILS | 30-240 | IL | הזמנת אוכל | 10bis
- | kabala@rami-levy.co.il | he | ILS | 80-1900 | IL | קנייה בסניף | Rami-levy
רמי לוי שיווק השקמה 2006 בע"מ | online@rami-levy.co.il | he | ILS | 150-2100 | IL | הזמנה אונליין
מכבי שירותי בריאות | noreply@maccabi4u.co.il | he | ILS | 20-700 | IL | השתתפות עצמית
אל על | e-ticket@elal.co.il | he | USD ILS | 180-4200 | IL | כרטיס טיסה; כבודה
סטודיו פילאטיס נועה | noreply@greeninvoice.co.il | he | ILS | 70-1200 | IL | כרטיסיית שיעורים
Amazon.com | auto-confirm@amazon.com | en | USD | 9-2600 | US | USB-C cable; Kindle book; Earbuds
Apple | no_reply@email.apple.com | en | USD ILS | 1-60 | US | iCloud+ 200GB; App Store purchase
Google Payments | payments-noreply@google.com | en | USD ILS | 2-300 | US | Workspace; Google One
GitHub | billing@github.com | en | USD | 4-2100 | US | GitHub Team seats; Copilot
- | billing@digitalocean.com | en | USD | 5-1400 | US | Droplets; Spaces | Digitalocean
- | invoice+statements@mail.notion.so | en | USD | 8-960 | US | Notion Plus | Notion
Booking.com | noreply@booking.com | en | EUR | 80-3800 | EU | Hotel stay; City tax
Airbnb | automated@airbnb.com | en | USD EUR | 120-6400 | US | Nights; Cleaning fee
Uber Receipts | noreply@uber.com | en | ILS EUR | 18-260 | UTC | Trip fare; Booking fee
Zoom | billing@zoom.us | en | USD | 15-1800 | US | Zoom Pro
Ryanair | itinerary@ryanair.com | en | EUR | 19-900 | EU | Flight; Priority boarding
Spotify | no-reply@spotify.com | en | EUR ILS | 10-40 | EU | Spotify Premium
Lufthansa | booking@lufthansa.com | en | EUR | 240-5600 | EU | Flight ticket; Seat reservation
- | rechnung@hetzner.de | en | EUR | 4-1100 | EU | Cloud server; Backups | Hetzner
OpenAI | noreply@tm.openai.com | en | USD | 5-1500 | US | API usage; ChatGPT Plus
"""


def _vendors(table: str) -> tuple[_Vendor, ...]:
    vendors = []
    for row in table.strip().splitlines():
        display, address, language, currencies, amounts, zone, items, *expected = (
            cell.strip() for cell in row.split("|")
        )
        low, high = amounts.split("-")
        vendors.append(
            _Vendor(
                display=None if display == "-" else display,
                address=address,
                expected_vendor=expected[0] if expected else display,
                language="he" if language == "he" else "en",
                currencies=tuple(currencies.split()),
                low=float(low),
                high=float(high),
                items=tuple(item.strip() for item in items.split(";")),
                zone=zone,
            )
        )
    return tuple(vendors)


_VENDORS = _vendors(_VENDOR_TABLE)

_NEWSLETTERS: tuple[tuple[str, str, Literal["he", "en"], tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "TheMarker",
        "newsletter@themarker.com",
        "he",
        ("הכותרות של הבוקר", "סיכום השבוע בכלכלה", "הריבית, הדולר והבורסה: מה צפוי השבוע"),
        ("בנק ישראל הותיר את הריבית ללא שינוי.", "הדולר נסחר סביב 3.70 שקלים."),
    ),
    (
        "שופרסל",
        "news@shufersal.co.il",
        "he",
        (
            "מבצעי השבוע בשופרסל: עד 50% הנחה",
            "קבלו 20% הנחה על כל האתר",
            "משלוח חינם בהזמנה ראשונה",
        ),
        ("רק השבוע: ₪50 הנחה בקנייה מעל ₪300.", "המבצע בתוקף עד סוף השבוע ועד גמר המלאי."),
    ),
    (
        "Medium Daily Digest",
        "noreply@medium.com",
        "en",
        ("Top stories for you", "The best of Python this week", "Stories you might have missed"),
        ("Why async Python is faster than you think.", "A gentle introduction to Temporal."),
    ),
    (
        "GitHub",
        "noreply@github.com",
        "en",
        ("What's new at GitHub this month", "Your GitHub activity summary"),
        ("Actions now supports larger runners.", "Copilot is available in more editors."),
    ),
    (
        "Ryanair",
        "newsletter@ryanair.com",
        "en",
        ("Flash sale: flights from €19.99", "Your next weekend away starts here"),
        ("Seats from €19.99 to Rome, Milan and Athens.", "Book by midnight Thursday."),
    ),
    (
        "LinkedIn",
        "messages-noreply@linkedin.com",
        "en",
        ("You appeared in 12 searches this week", "See who viewed your profile"),
        ("Recruiters are looking at profiles like yours.", "Grow your network."),
    ),
)

_HE_FIRST_NAMES = ("נועה", "יוסי", "מיכל", "אבי", "שירה", "דני", "רותם", "עומר")
_EN_FIRST_NAMES = ("Dana", "Yossi", "Michal", "Avi", "Shira", "Danny", "Rotem", "Omer")
_HE_MONTHS = (
    "ינואר", "פברואר", "מרץ", "אפריל", "מאי", "יוני", "יולי", "אוגוסט", "ספטמבר", "אוקטובר",
    "נובמבר", "דצמבר",
)  # fmt: skip
_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip

# How each currency is written, by language; "{n}" is the number.
_MONEY_STYLES: dict[tuple[str, str], tuple[str, ...]] = {
    ("ILS", "he"): ("₪{n}", "{n} ₪", '{n} ש"ח', "{n} ש״ח", "₪ {n}", "{n} ש''ח"),
    ("ILS", "en"): ("₪{n}", "NIS {n}", "{n} NIS", "ILS {n}", "₪ {n}"),
    ("USD", "he"): ("${n}", "{n} $", "USD {n}"),
    ("USD", "en"): ("${n}", "USD {n}", "{n} USD", "US${n}"),
    ("EUR", "he"): ("€{n}", "{n} €", "{n} יורו"),
    ("EUR", "en"): ("€{n}", "{n} €", "EUR {n}", "{n} EUR"),
}
_NUMBER_STYLES = ("grouped", "grouped", "plain", "european")


def _format_number(amount: Decimal, style: str, whole: bool) -> str:
    text = f"{amount:,.0f}" if whole else f"{amount:,.2f}"
    if style == "plain":
        text = text.replace(",", "")
    elif style == "european":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


@dataclass(frozen=True)
class _Spec:
    """Everything about message i that does not depend on when it was sent."""

    kind: Kind
    malformed_code: str | None
    language: Literal["he", "en"]
    sender_display: str | None
    sender_address: str
    expected_vendor: str | None
    zone: str
    subject: str
    # receipts and malformed receipts
    doc_number: int
    currency: str
    money_style: str
    number_style: str
    whole: bool
    total: Decimal
    lines: tuple[tuple[str, Decimal], ...]  # (label, amount) before the total line
    tax_pct: str
    total_label: str
    date_label: str | None  # None: the body states no date
    date_format: int
    issued_days_before: int
    customer: str
    card_last4: str
    # newsletters
    newsletter_lines: tuple[str, ...]
    # rendering
    pdf_name: str | None
    with_logo: bool
    html_only: bool
    charset: str
    jitter: float


def _money(spec: _Spec, amount: Decimal) -> str:
    number = _format_number(
        amount, spec.number_style, spec.whole and amount == amount.to_integral()
    )
    return spec.money_style.format(n=number)


@functools.lru_cache(maxsize=65536)
def _spec(seed: int, email: str, index: int, forced: Kind | None) -> _Spec:
    rng = random.Random(f"{seed}:{email}:{index}")
    roll = rng.random()
    kind: Kind = "receipt" if roll < 0.80 else "newsletter" if roll < 0.94 else "malformed"
    kind = forced or kind
    malformed_code = (
        rng.choice(("no_amount", "bad_date", "undecodable_body")) if kind == "malformed" else None
    )
    jitter = rng.uniform(0.05, 0.9)
    if kind == "newsletter":
        name, address, language, subjects, paragraphs = rng.choice(_NEWSLETTERS)
        return _Spec(
            kind=kind, malformed_code=None, language=language, sender_display=name,
            sender_address=address, expected_vendor=None, zone="UTC",
            subject=rng.choice(subjects), doc_number=0, currency="", money_style="",
            number_style="grouped", whole=False, total=Decimal(0), lines=(), tax_pct="",
            total_label="", date_label=None, date_format=0, issued_days_before=0,
            customer="", card_last4="",
            newsletter_lines=tuple(rng.sample(paragraphs, len(paragraphs))),
            pdf_name=None, with_logo=rng.random() < 0.5, html_only=rng.random() < 0.3,
            charset="utf-8", jitter=jitter,
        )  # fmt: skip

    vendors = _VENDORS
    if malformed_code == "undecodable_body":
        # Only Hebrew text in windows-1255 is reliably invalid UTF-8.
        vendors = tuple(v for v in _VENDORS if v.language == "he")
    vendor = rng.choice(vendors)
    language = vendor.language
    currency = rng.choice(vendor.currencies)
    money_style = rng.choice(_MONEY_STYLES[(currency, language)])
    number_style = rng.choice(_NUMBER_STYLES)
    if number_style == "european" and currency != "EUR":
        number_style = "grouped"
    # A few big amounts everywhere, so thousands separators show up for every currency.
    high = vendor.high * (8 if rng.random() < 0.08 else 1)
    total = Decimal(f"{math.exp(rng.uniform(math.log(vendor.low), math.log(high))):.2f}")
    whole = rng.random() < 0.2
    if whole:
        total = total.to_integral_value()
    lines, tax_pct = _breakdown(rng, vendor, total)
    doc_number = rng.randint(1000, 999999)
    date_label: str | None = None
    if rng.random() < 0.7 or malformed_code == "bad_date":
        date_label = rng.choice(
            ("תאריך", "תאריך הפקה", "תאריך עסקה")
            if language == "he"
            else ("Date", "Invoice date", "Date paid", "Issued on")
        )
    if language == "he":
        total_label = rng.choice(('סה"כ לתשלום', "סה״כ לתשלום", 'סה"כ', "סכום לתשלום"))
    else:
        total_label = rng.choice(("Total", "Amount paid", "Total due", "Total charged", "TOTAL"))
    spec = _Spec(
        kind=kind, malformed_code=malformed_code, language=language,
        sender_display=vendor.display, sender_address=vendor.address,
        expected_vendor=vendor.expected_vendor, zone=vendor.zone, subject="",
        doc_number=doc_number, currency=currency, money_style=money_style,
        number_style=number_style, whole=whole, total=total, lines=lines, tax_pct=tax_pct,
        total_label=total_label, date_label=date_label, date_format=rng.randrange(4),
        issued_days_before=rng.choice((0, 0, 0, 1)),
        customer=rng.choice(_HE_FIRST_NAMES if language == "he" else _EN_FIRST_NAMES),
        card_last4=f"{rng.randint(0, 9999):04d}", newsletter_lines=(), pdf_name=None,
        with_logo=rng.random() < 0.15, html_only=rng.random() < 0.2,
        charset="windows-1255" if language == "he" and rng.random() < 0.15 else "utf-8",
        jitter=jitter,
    )  # fmt: skip
    pdf_name = (
        _pdf_name(rng, spec) if (rng.random() < 0.3 or malformed_code == "no_amount") else None
    )
    return replace(spec, subject=_subject(rng, spec, vendor), pdf_name=pdf_name)


def _breakdown(
    rng: random.Random, vendor: _Vendor, total: Decimal
) -> tuple[tuple[tuple[str, Decimal], ...], str]:
    """Item lines, subtotal and tax that add up to the total (the parser must skip them)."""
    if vendor.language == "he":
        pct = "17" if rng.random() < 0.6 else "18"
        tax_label = f'מע"מ {pct}%'
        subtotal_label = rng.choice(('סה"כ לפני מע"מ', "סכום ביניים"))
    elif rng.random() < 0.5:
        return _items(rng, vendor, total), ""
    else:
        pct = rng.choice(("8.25", "10", "20"))
        tax_label = f"Tax ({pct}%)"
        subtotal_label = "Subtotal"
    net = (total / (1 + Decimal(pct) / 100)).quantize(_CENT)
    tax = total - net
    return (*_items(rng, vendor, net), (subtotal_label, net), (tax_label, tax)), pct


def _items(rng: random.Random, vendor: _Vendor, net: Decimal) -> tuple[tuple[str, Decimal], ...]:
    names = rng.sample(vendor.items, rng.randint(1, len(vendor.items)))
    if len(names) == 1 or net < 2:
        return ((names[0], net),)
    first = (net * Decimal(rng.uniform(0.3, 0.8))).quantize(_CENT)
    return ((names[0], first), (names[1], net - first))


def _pdf_name(rng: random.Random, spec: _Spec) -> str:
    if spec.language == "he":
        pattern = rng.choice(("קבלה_{n}.pdf", "חשבונית_מס_{n}.pdf", "invoice_{n}.pdf"))
    else:
        pattern = rng.choice(("Receipt-{n}.pdf", "Invoice-{n}.pdf", "invoice_{n}.pdf"))
    return pattern.format(n=spec.doc_number)


def _subject(rng: random.Random, spec: _Spec, vendor: _Vendor) -> str:
    name = vendor.display or vendor.expected_vendor
    shows_total = spec.malformed_code != "no_amount"
    if spec.language == "he":
        options = [
            f"קבלה מספר {spec.doc_number} - {name}",
            f"חשבונית מס קבלה - {name}",
            f"הקבלה שלך מ-{name}",
            f"חשבונית מס {spec.doc_number}",
        ]
        if shows_total:
            options.append(f"{name}: אישור תשלום על סך {_money(spec, spec.total)}")
    else:
        options = [
            f"Your receipt from {name}",
            f"Your {name} invoice #{spec.doc_number}",
            f"Payment confirmation - {name}",
            f"Order Confirmation #{spec.doc_number}",
        ]
        if shows_total:
            options.append(f"Receipt for your payment of {_money(spec, spec.total)}")
    return rng.choice(options)


def _zone_offset(zone: str, when: datetime.datetime) -> datetime.timezone:
    summer = 4 <= when.month <= 10
    hours = {"IL": 3 if summer else 2, "US": -7 if summer else -8, "EU": 2 if summer else 1}
    return datetime.timezone(datetime.timedelta(hours=hours.get(zone, 0)))


def _format_date(spec: _Spec, day: datetime.date) -> str:
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
class _Rendered:
    message: dict[str, Any]
    facts: MessageFacts


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _render(spec: _Spec, message_id: str, ts: float, history_id: int, to: str) -> _Rendered:
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
            "body": {"size": len(data), "data": _b64(data)},
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
            amount=spec.total.quantize(_CENT), currency=spec.currency, issued_at=issued,
            attachments=attachments,
        )  # fmt: skip
    return _Rendered(message, facts)


def _number_parts(part: dict[str, Any], part_id: str) -> None:
    part["partId"] = part_id
    for number, child in enumerate(part.get("parts", [])):
        _number_parts(child, f"{part_id}.{number}" if part_id else str(number))


def _walk(part: dict[str, Any]) -> list[dict[str, Any]]:
    out = [part]
    for child in part.get("parts", []):
        out.extend(_walk(child))
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
            "size": len(_attachment_bytes(filename)),
        },
    }


def _attachment_bytes(filename: str) -> bytes:
    if filename.endswith(".pdf"):
        return (
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% sandbox document "
            + filename.encode()
            + b"\ntrailer << /Root 1 0 R >>\n%%EOF\n"
        )
    return b"\x89PNG\r\n\x1a\n" + hashlib.sha256(filename.encode()).digest()


def _body(spec: _Spec, issued: datetime.date) -> tuple[str, str]:
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
    rows.extend((label, _money(spec, amount)) for label, amount in spec.lines)
    rows.append((spec.total_label, _money(spec, spec.total)))
    if he:
        rows.append(("אמצעי תשלום", f"כרטיס אשראי המסתיים ב-{spec.card_last4}"))
        rows.append(("", "המסמך הופק באופן ממוחשב."))
    else:
        rows.append(("Payment method", f"Visa ending in {spec.card_last4}"))
        rows.append(("", f"Questions? Contact support@{spec.sender_address.split('@')[1]}."))
    return _plain(rows), _html(spec, rows)


def _plain(rows: list[tuple[str, str]]) -> str:
    return "\n".join(f"{label}: {value}" if label else value for label, value in rows) + "\n"


def _html(spec: _Spec, rows: list[tuple[str, str]]) -> str:
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


# ---------------------------------------------------------------------------------------------
# Accounts, tokens, history, quota


@dataclass
class _Delivered:
    ts: float
    history_id: int
    forced: Kind | None


@dataclass
class _Account:
    email: str
    tag: str
    created_at: float
    history_base: int
    history_floor: int
    bucket: float
    bucket_at: float
    delivered: list[_Delivered] = field(default_factory=list)
    auto_delivered: int = 0


@dataclass
class _AccessToken:
    email: str
    expires_at: float


class _QueryError(ValueError):
    pass


@dataclass(frozen=True)
class _Meta:
    subject: str
    sender: str
    ts: float
    filenames: tuple[str, ...]


_Predicate = Callable[[_Meta], bool]


@dataclass(frozen=True)
class _Query:
    groups: tuple[tuple[_Predicate, ...], ...]  # all groups must hold; any predicate in a group
    after: float | None
    before: float | None

    @property
    def needs_meta(self) -> bool:
        return bool(self.groups)

    def matches(self, meta: _Meta) -> bool:
        return all(any(p(meta) for p in group) for group in self.groups)


_QUERY_TOKEN = re.compile(
    r'-?[A-Za-z_]+:(?:"[^"]*"|\([^)]*\)|\{[^}]*\}|[^\s(){}]+)|-?"[^"]*"|-?\{[^}]*\}|[()]|[^\s(){}]+'
)
_IGNORED_OPERATORS = frozenset(
    {"in", "label", "is", "category", "to", "deliveredto", "list", "larger", "smaller"}
)


def _parse_when(value: str) -> float:
    if value.isdigit():
        return float(value)
    match = re.fullmatch(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})", value)
    if match is None:
        raise _QueryError(f"Invalid date in query: {value}")
    try:
        day = datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        raise _QueryError(f"Invalid date in query: {value}") from exc
    return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp()


def _parse_age(value: str, now: float) -> float:
    match = re.fullmatch(r"(\d+)([dmy])", value.lower())
    if match is None:
        raise _QueryError(f"Invalid age in query: {value}")
    days = int(match[1]) * {"d": 1, "m": 30, "y": 365}[match[2]]
    return now - days * _DAY_S


def _words(value: str) -> list[str]:
    inner = value.strip("(){}")
    parts = [p.strip('"').lower() for p in re.findall(r'"[^"]*"|\S+', inner)]
    return [p for p in parts if p and p != "or"]


def parse_query(q: str, now: float) -> _Query:
    """Parse the supported subset of Gmail's search syntax (see the module docstring)."""
    groups: list[list[tuple[_Predicate, tuple[str, float] | None]]] = []
    join_next = False
    for token in _QUERY_TOKEN.findall(q):
        if token in ("(", ")"):
            continue
        if token in ("OR", "|"):
            join_next = bool(groups)
            continue
        term = _term(token, now)
        if join_next:
            groups[-1].append(term)
            join_next = False
        else:
            groups.append([term])
    after: float | None = None
    before: float | None = None
    kept: list[tuple[_Predicate, ...]] = []
    for group in groups:
        (_, bound), *rest = group
        if rest or bound is None:
            kept.append(tuple(p for p, _ in group))
        elif bound[0] == "after":
            # A date bound on its own narrows the scanned index range instead of being checked.
            after = bound[1] if after is None else max(after, bound[1])
        else:
            before = bound[1] if before is None else min(before, bound[1])
    return _Query(tuple(kept), after, before)


def _term(token: str, now: float) -> tuple[_Predicate, tuple[str, float] | None]:
    negate = token.startswith("-") and len(token) > 1
    body = token[1:] if negate else token
    predicate: _Predicate
    bound: tuple[str, float] | None = None
    op, sep, value = body.partition(":")
    op = op.lower()
    if sep and op in ("after", "before", "newer_than", "older_than"):
        at = _parse_when(value) if op in ("after", "before") else _parse_age(value, now)
        if op in ("after", "newer_than"):
            predicate, bound = (lambda m: m.ts >= at), ("after", at)
        else:
            predicate, bound = (lambda m: m.ts < at), ("before", at)
    elif sep and op == "from":
        who = value.strip('"').lower()
        predicate = lambda m: who in m.sender  # noqa: E731
    elif sep and op == "subject":
        words = _words(value)
        predicate = lambda m: any(w in m.subject for w in words)  # noqa: E731
    elif sep and op == "has":
        wanted = value.lower() == "attachment"
        predicate = lambda m: bool(m.filenames) or not wanted  # noqa: E731
    elif sep and op == "filename":
        name = value.strip('"').lower()
        predicate = lambda m: any(f.endswith("." + name) or name in f for f in m.filenames)  # noqa: E731
    elif sep and op in _IGNORED_OPERATORS:
        predicate = lambda m: True  # noqa: E731
    else:
        free = _words(body) or [body.lower()]
        predicate = lambda m: any(w in m.subject for w in free)  # noqa: E731
    if negate:
        inner = predicate
        return (lambda m: not inner(m)), None
    return predicate, bound


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
        raise _QueryError("Invalid pageToken") from exc
    parts = raw.split(":")
    if len(parts) != fields:
        raise _QueryError("Invalid pageToken")
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
        self.seed = seed
        self.mailbox_size = mailbox_size
        self.new_messages_per_minute = new_messages_per_minute
        self.history_retention = history_retention
        self.access_token_ttl_s = access_token_ttl_s
        self.rate_limit_403_fraction = rate_limit_403_fraction
        self.server_error_rate = server_error_rate
        self._clock = clock
        self._wall_clock = wall_clock
        self._client = (client_id, client_secret)
        end = datetime.datetime.combine(newest_date, datetime.time(), tzinfo=datetime.UTC)
        self._end_ts = end.timestamp() + _DAY_S
        self._start_ts = self._end_ts - _SPAN_S
        self._rng = random.Random(seed)
        self._accounts: dict[str, _Account] = {}
        self._refresh_tokens: dict[str, str] = {}  # refresh token -> email
        self._revoked: set[str] = set()
        self._access_tokens: dict[str, _AccessToken] = {}
        self._stats: Counter[str] = Counter()

    # -- Python control surface (the HTTP control endpoints call these) ----------------------

    def register_account(self, email: str, refresh_token: str | None = None) -> dict[str, Any]:
        """Create (or find) the mailbox for `email`; answer a refresh token and an access token."""
        email = email.strip().lower()
        if "@" not in email:
            raise ValueError(f"not an email address: {email!r}")
        account = self._accounts.get(email)
        if account is None:
            tag = hashlib.sha256(f"{self.seed}:{email}".encode()).hexdigest()[:6]
            history_base = 4_000_000 + int(tag, 16) % 1_000_000
            now = self._clock()
            account = _Account(
                email=email, tag=tag, created_at=now, history_base=history_base,
                history_floor=history_base, bucket=self.quota_units_per_s, bucket_at=now,
            )  # fmt: skip
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
            "history_id": str(self._latest_history_id(account)),
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
        account.history_floor = self._latest_history_id(account)
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
        index = self._index_of(account, message_id)
        if index is None:
            raise KeyError(message_id)
        facts = self._rendered(account, index).facts
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
            total = self._total(account)
            lo, hi = self._index_range(account, total, query)
            start = hi - 1
            if page_token := request.query.get("pageToken"):
                position, token_fp = _decode_token(page_token, 2)
                if int(token_fp) != fingerprint:
                    raise _QueryError("Invalid pageToken")
                start = min(int(position), hi - 1)
        except (_QueryError, ValueError) as exc:
            return _gmail_error(400, str(exc), "invalidArgument")

        ids: list[str] = []
        index = start
        scanned = 0
        while index >= lo and len(ids) < max_results:
            if self._matches(account, index, query):
                ids.append(self._message_id(account, index))
            index -= 1
            scanned += 1
        # Look ahead to the next match so the last page never promises more than there is.
        while index >= lo and not self._matches(account, index, query):
            index -= 1
            scanned += 1
        body: dict[str, Any] = {}
        if ids:
            body["messages"] = [{"id": i, "threadId": i} for i in ids]
        if index >= lo:
            body["nextPageToken"] = _encode_token(index, fingerprint)
        body["resultSizeEstimate"] = self._estimate(len(ids), scanned, hi - lo)
        return web.json_response(body)

    async def _handle_get(self, request: web.Request) -> web.Response:
        self._stats["get_calls"] += 1
        account = self._admit(request, "get")
        if isinstance(account, web.Response):
            return account
        message_id = request.match_info["message_id"]
        index = self._index_of(account, message_id)
        if index is None:
            if not re.fullmatch(r"[0-9a-f]{16}", message_id):
                return _gmail_error(400, "Invalid id value", "invalidArgument")
            self._stats["not_found"] += 1
            return _gmail_error(404, "Requested entity was not found.", "notFound")
        message = self._rendered(account, index).message
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
        index = self._index_of(account, request.match_info["message_id"])
        wanted = request.match_info["attachment_id"]
        if index is not None:
            message = self._rendered(account, index).message
            for part in _walk(message["payload"]):
                if part.get("body", {}).get("attachmentId") == wanted:
                    data = _attachment_bytes(part["filename"])
                    return web.json_response(
                        {"attachmentId": wanted, "size": len(data), "data": _b64(data)}
                    )
        self._stats["not_found"] += 1
        return _gmail_error(404, "Requested entity was not found.", "notFound")

    async def _handle_profile(self, request: web.Request) -> web.Response:
        self._stats["profile_calls"] += 1
        account = self._admit(request, "profile")
        if isinstance(account, web.Response):
            return account
        total = self._total(account)
        return web.json_response(
            {
                "emailAddress": account.email,
                "messagesTotal": total,
                "threadsTotal": total,
                "historyId": str(self._latest_history_id(account)),
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
                    raise _QueryError("Invalid pageToken")
                position = int(raw_position)
        except KeyError:
            return _gmail_error(400, "Missing required parameter startHistoryId", "required")
        except (_QueryError, ValueError) as exc:
            return _gmail_error(400, str(exc), "invalidArgument")
        if start_id < self._history_floor(account):
            self._stats["not_found"] += 1
            return _gmail_error(404, "Requested entity was not found.", "notFound")
        delivered = account.delivered
        if position is None:
            position = bisect.bisect_right(delivered, start_id, key=lambda d: d.history_id)
        page = delivered[position : position + max_results]
        body: dict[str, Any] = {}
        if page:
            body["history"] = [
                self._history_record(account, position + offset, record)
                for offset, record in enumerate(page)
            ]
        if position + max_results < len(delivered):
            body["nextPageToken"] = _encode_token(position + max_results, start_id)
        body["historyId"] = str(self._latest_history_id(account))
        return web.json_response(body)

    def _history_record(
        self, account: _Account, position: int, record: _Delivered
    ) -> dict[str, Any]:
        message_id = self._message_id(account, self.mailbox_size + position)
        ref = {"id": message_id, "threadId": message_id}
        return {
            "id": str(record.history_id),
            "messages": [ref],
            "messagesAdded": [{"message": {**ref, "labelIds": ["INBOX", "UNREAD"]}}],
        }

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
                "history_id": str(self._latest_history_id(self._account(email))),
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

    def _account(self, email: str) -> _Account:
        account = self._accounts.get(email.strip().lower())
        if account is None:
            raise KeyError(email)
        return account

    def _issue_access_token(self, email: str) -> str:
        token = f"ya29.sbx{self._rng.getrandbits(128):032x}"
        self._access_tokens[token] = _AccessToken(email, self._clock() + self.access_token_ttl_s)
        return token

    def _admit(self, request: web.Request, operation: str) -> _Account | web.Response:
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

    def _take(self, account: _Account, cost: int) -> bool:
        now = self._clock()
        rate = self.quota_units_per_s
        account.bucket = min(rate, account.bucket + (now - account.bucket_at) * rate)
        account.bucket_at = now
        if account.bucket < cost:
            return False
        account.bucket -= cost
        return True

    def _materialize(self, account: _Account) -> None:
        """Deliver the messages `new_messages_per_minute` says have arrived since the last look."""
        if self.new_messages_per_minute <= 0:
            return
        due = int((self._clock() - account.created_at) * self.new_messages_per_minute / 60)
        for _ in range(min(due - account.auto_delivered, 10_000)):
            self._deliver_one(account, None)
            account.auto_delivered += 1

    def _deliver_one(self, account: _Account, kind: Kind | None) -> str:
        last_ts = account.delivered[-1].ts if account.delivered else self._end_ts
        last_id = self._latest_history_id(account)
        position = len(account.delivered)
        # History ids grow with gaps, as Gmail's do; clients must not assume +1.
        record = _Delivered(
            max(self._wall_clock(), last_ts + 1.0), last_id + 1 + position % 3, kind
        )
        account.delivered.append(record)
        self._stats["messages_delivered"] += 1
        return self._message_id(account, self.mailbox_size + position)

    def _latest_history_id(self, account: _Account) -> int:
        return account.delivered[-1].history_id if account.delivered else account.history_base

    def _history_floor(self, account: _Account) -> int:
        floor = account.history_floor
        dropped = len(account.delivered) - self.history_retention
        if dropped > 0:
            floor = max(floor, account.delivered[dropped - 1].history_id)
        return floor

    def _total(self, account: _Account) -> int:
        return self.mailbox_size + len(account.delivered)

    def _message_id(self, account: _Account, index: int) -> str:
        return f"{account.tag}{index:010x}"

    def _index_of(self, account: _Account, message_id: str) -> int | None:
        if len(message_id) != 16 or not message_id.startswith(account.tag):
            return None
        try:
            index = int(message_id[6:], 16)
        except ValueError:
            return None
        return index if index < self._total(account) else None

    def _forced(self, account: _Account, index: int) -> Kind | None:
        if index < self.mailbox_size:
            return None
        return account.delivered[index - self.mailbox_size].forced

    def _ts(self, account: _Account, index: int) -> float:
        if index >= self.mailbox_size:
            return account.delivered[index - self.mailbox_size].ts
        spec = _spec(self.seed, account.email, index, None)
        step = _SPAN_S / self.mailbox_size
        return self._start_ts + (index + spec.jitter) * step

    def _rendered(self, account: _Account, index: int) -> _Rendered:
        spec = _spec(self.seed, account.email, index, self._forced(account, index))
        if index < self.mailbox_size:
            history_id = account.history_base
        else:
            history_id = account.delivered[index - self.mailbox_size].history_id
        return _render(
            spec,
            self._message_id(account, index),
            self._ts(account, index),
            history_id,
            account.email,
        )

    def _index_range(self, account: _Account, total: int, query: _Query) -> tuple[int, int]:
        indexes = range(total)
        lo = (
            0
            if query.after is None
            else bisect.bisect_left(indexes, query.after, key=lambda i: self._ts(account, i))
        )
        hi = (
            total
            if query.before is None
            else bisect.bisect_left(indexes, query.before, key=lambda i: self._ts(account, i))
        )
        return lo, max(lo, hi)

    def _matches(self, account: _Account, index: int, query: _Query) -> bool:
        if not query.needs_meta:
            return True
        spec = _spec(self.seed, account.email, index, self._forced(account, index))
        sender = f"{spec.sender_display or ''} <{spec.sender_address}>".lower()
        filenames = tuple(
            n.lower() for n in (spec.pdf_name, "logo.png" if spec.with_logo else None) if n
        )
        meta = _Meta(spec.subject.lower(), sender, self._ts(account, index), filenames)
        return query.matches(meta)

    def _estimate(self, found: int, scanned: int, candidates: int) -> int:
        """Gmail's estimate is rough; so is this one: the page's hit rate over the range."""
        if candidates <= 0:
            return 0
        rate = found / scanned if scanned else 1.0
        guess = max(found, round(candidates * rate))
        if guess < 10:
            return guess
        digits = len(str(guess)) - 2
        return int(round(guess, -digits))

    def _max_results(self, request: web.Request, *, default: int) -> int:
        raw = request.query.get("maxResults")
        if raw is None:
            return default
        value = int(raw)
        if value < 1:
            raise _QueryError("Invalid maxResults: must be positive")
        return min(value, 500)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (ValueError, json.JSONDecodeError):
        return {}
    return body if isinstance(body, dict) else {}
