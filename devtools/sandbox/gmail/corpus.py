"""The mail corpus: what message *i* of a sandbox mailbox is, generated on demand.

Each message comes from a RNG seeded with (seed, email, i), so a mailbox of any size costs
nothing until it is read and reads the same every time. About 80% receipts (Hebrew or English,
Israeli and international vendors, ₪/ש"ח/NIS/ILS/$/USD/€/EUR, thousands separators, European
decimal commas), 14% newsletters, 6% malformed receipts (no amount, an impossible date, a body in
windows-1255 labelled UTF-8). A `MessageSpec` is everything about a message that does not depend
on when it was sent; `messages.render` turns it into Gmail's message resource.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

Kind = Literal["receipt", "newsletter", "malformed"]
KINDS: tuple[Kind, ...] = ("receipt", "newsletter", "malformed")

CENT = Decimal("0.01")


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
class MessageSpec:
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


def money(spec: MessageSpec, amount: Decimal) -> str:
    """`amount` written the way this message writes money (symbol, separators, decimals)."""
    number = _format_number(
        amount, spec.number_style, spec.whole and amount == amount.to_integral()
    )
    return spec.money_style.format(n=number)


@functools.lru_cache(maxsize=65536)
def message_spec(seed: int, email: str, index: int, forced: Kind | None) -> MessageSpec:
    """Message `index` of `email`'s mailbox (of kind `forced`, for a delivered one if given)."""
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
        return MessageSpec(
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
    spec = MessageSpec(
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
    net = (total / (1 + Decimal(pct) / 100)).quantize(CENT)
    tax = total - net
    return (*_items(rng, vendor, net), (subtotal_label, net), (tax_label, tax)), pct


def _items(rng: random.Random, vendor: _Vendor, net: Decimal) -> tuple[tuple[str, Decimal], ...]:
    names = rng.sample(vendor.items, rng.randint(1, len(vendor.items)))
    if len(names) == 1 or net < 2:
        return ((names[0], net),)
    first = (net * Decimal(rng.uniform(0.3, 0.8))).quantize(CENT)
    return ((names[0], first), (names[1], net - first))


def _pdf_name(rng: random.Random, spec: MessageSpec) -> str:
    if spec.language == "he":
        pattern = rng.choice(("קבלה_{n}.pdf", "חשבונית_מס_{n}.pdf", "invoice_{n}.pdf"))
    else:
        pattern = rng.choice(("Receipt-{n}.pdf", "Invoice-{n}.pdf", "invoice_{n}.pdf"))
    return pattern.format(n=spec.doc_number)


def _subject(rng: random.Random, spec: MessageSpec, vendor: _Vendor) -> str:
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
            options.append(f"{name}: אישור תשלום על סך {money(spec, spec.total)}")
    else:
        options = [
            f"Your receipt from {name}",
            f"Your {name} invoice #{spec.doc_number}",
            f"Payment confirmation - {name}",
            f"Order Confirmation #{spec.doc_number}",
        ]
        if shows_total:
            options.append(f"Receipt for your payment of {money(spec, spec.total)}")
    return rng.choice(options)
