"""`parse_receipt` over a table of Gmail message resources built the way Gmail serves them."""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from longtasks.receipt_parsing import MalformedReceipt, NotAReceipt, ParsedReceipt, parse_receipt
from longtasks.receipt_parsing._money import parse_number

D = datetime.date


def b64(text: str, charset: str = "utf-8") -> str:
    return base64.urlsafe_b64encode(text.encode(charset)).decode("ascii")


def text_part(mime_type: str, text: str, charset: str = "utf-8") -> dict[str, Any]:
    return {
        "partId": "",
        "mimeType": mime_type,
        "filename": "",
        "headers": [{"name": "Content-Type", "value": f'{mime_type}; charset="{charset}"'}],
        "body": {"size": len(text), "data": b64(text, charset)},
    }


def attachment(name: str, mime_type: str = "application/pdf") -> dict[str, Any]:
    return {
        "mimeType": mime_type,
        "filename": name,
        "headers": [{"name": "Content-Disposition", "value": f'attachment; filename="{name}"'}],
        "body": {"size": 1234, "attachmentId": "ANGjdJ8" + name.encode().hex()[:20]},
    }


@dataclass
class Msg:
    subject: str
    body: str | None = None
    html: str | None = None
    sender: str | None = '"Vendor Ltd" <billing@vendor.example.com>'
    date: str | None = "Tue, 05 Mar 2024 10:15:00 +0200"
    files: tuple[str, ...] = ()
    charset: str = "utf-8"
    internal_date: str = "1709626500000"  # 2024-03-05T08:15:00Z
    extra_parts: list[dict[str, Any]] = field(default_factory=list)

    def build(self) -> dict[str, Any]:
        headers = [{"name": "To", "value": "me@example.com"}]
        if self.sender is not None:
            headers.append({"name": "From", "value": self.sender})
        headers.append({"name": "Subject", "value": self.subject})
        if self.date is not None:
            headers.append({"name": "Date", "value": self.date})
        alternatives = []
        if self.body is not None:
            alternatives.append(text_part("text/plain", self.body, self.charset))
        if self.html is not None:
            alternatives.append(text_part("text/html", self.html, self.charset))
        content: dict[str, Any]
        if len(alternatives) == 1:
            content = alternatives[0]
        else:
            content = {"mimeType": "multipart/alternative", "filename": "", "parts": alternatives}
        files = [attachment(n) for n in self.files] + self.extra_parts
        payload: dict[str, Any] = (
            {"mimeType": "multipart/mixed", "filename": "", "parts": [content, *files]}
            if files
            else dict(content)
        )
        payload["headers"] = headers + payload.get("headers", [])
        return {
            "id": "18e0f0a1b2c3d4e5",
            "threadId": "18e0f0a1b2c3d4e5",
            "internalDate": self.internal_date,
            "payload": payload,
        }


@dataclass(frozen=True)
class Want:
    amount: str
    currency: str
    issued_at: datetime.date
    vendor: str = "Vendor Ltd"
    attachments: tuple[str, ...] = ()


HE_RECEIPT = """שלום ישראל,
תודה על רכישתך.
קבלה מספר 40213
תאריך: 07/03/2024
מנוי חודשי  1,045.73 ₪
מע"מ 17%  177.77 ₪
סה"כ לתשלום: ₪1,223.50
"""

RECEIPTS: list[tuple[str, Msg, Want]] = [
    (
        "he-shekel-sign-prefix",
        Msg("קבלה על תשלום", HE_RECEIPT),
        Want("1223.50", "ILS", D(2024, 3, 7)),
    ),
    (
        "he-shekel-ascii-gershayim",
        Msg("חשבונית מס קבלה 1182", 'פריט: שיעור יוגה\nסה"כ: 250.00 ש"ח\n'),
        Want("250.00", "ILS", D(2024, 3, 5)),
    ),
    (
        "he-shekel-unicode-gershayim",
        Msg("חשבונית מס 77", "סה״כ לתשלום 1,890 ש״ח\nתאריך הפקה: 2024-02-29"),
        Want("1890.00", "ILS", D(2024, 2, 29)),
    ),
    (
        "he-shekel-two-apostrophes",
        Msg("הקבלה שלך", "סה''כ לתשלום: 99.90 ש''ח"),
        Want("99.90", "ILS", D(2024, 3, 5)),
    ),
    ("nis-prefix", Msg("Receipt #118", "Total: NIS 99.90"), Want("99.90", "ILS", D(2024, 3, 5))),
    (
        "ils-suffix",
        Msg("Invoice 2024-11", "Amount due: 1,500 ILS"),
        Want("1500.00", "ILS", D(2024, 3, 5)),
    ),
    (
        "usd-sign",
        Msg(
            "Your receipt from Vendor", "Date: March 12, 2024\nPro plan $1,200.00\nTotal: $1,234.56"
        ),
        Want("1234.56", "USD", D(2024, 3, 12)),
    ),
    (
        "usd-code-prefix",
        Msg("Invoice INV-2", "Total due USD 2,500.00"),
        Want("2500.00", "USD", D(2024, 3, 5)),
    ),
    (
        "usd-code-suffix",
        Msg("Payment confirmation", "Amount paid: 12.00 USD"),
        Want("12.00", "USD", D(2024, 3, 5)),
    ),
    (
        "us-dollar-prefix",
        Msg("Order Confirmation #99", "Order total: US$45.10"),
        Want("45.10", "USD", D(2024, 3, 5)),
    ),
    (
        "eur-european-format",
        Msg("Ihre Rechnung / your invoice", "Invoice date: 5 March 2024\nTotal: 1.234,50 €"),
        Want("1234.50", "EUR", D(2024, 3, 5)),
    ),
    ("eur-code", Msg("Booking receipt", "Total EUR 15.99"), Want("15.99", "EUR", D(2024, 3, 5))),
    ("eur-comma-decimal", Msg("Receipt", "Total: €12,5"), Want("12.50", "EUR", D(2024, 3, 5))),
    (
        "eur-dot-thousands",
        Msg("Invoice", "Grand total: 2.400 €"),
        Want("2400.00", "EUR", D(2024, 3, 5)),
    ),
    (
        "millions-with-separators",
        Msg("Invoice 7", "Grand total: $1,234,567.89"),
        Want("1234567.89", "USD", D(2024, 3, 5)),
    ),
    (
        "subtotal-and-tax-skipped",
        Msg("Your receipt", "Subtotal: $100.00\nTax: $17.00\nTotal: $117.00\nTotal items: 3"),
        Want("117.00", "USD", D(2024, 3, 5)),
    ),
    (
        "amount-only-in-subject",
        Msg("Receipt for your payment of $15.00", "Thanks! Your card was charged."),
        Want("15.00", "USD", D(2024, 3, 5)),
    ),
    ("he-amount-label", Msg("אישור תשלום", "סכום: 80 ש״ח"), Want("80.00", "ILS", D(2024, 3, 5))),
    (
        "he-bare-total-currency-from-body",
        Msg("חשבונית", 'כל הסכומים בש"ח\nסה"כ לתשלום: 1,234.50'),
        Want("1234.50", "ILS", D(2024, 3, 5)),
    ),
    (
        "pdf-named-invoice-without-keyword",
        Msg(
            "מסמך מהסטודיו",
            'סה"כ 100 ₪',
            files=("invoice_123.pdf",),
            extra_parts=[attachment("logo.png", "image/png")],
        ),
        Want("100.00", "ILS", D(2024, 3, 5), attachments=("invoice_123.pdf",)),
    ),
    (
        "body-keyword-and-labelled-total",
        Msg("Thanks for your order", "Order confirmation\nOrder total: $5.00"),
        Want("5.00", "USD", D(2024, 3, 5)),
    ),
    (
        "vendor-from-domain-label",
        Msg("Your invoice", "Total: $8.00", sender="<billing@mail.notion.so>"),
        Want("8.00", "USD", D(2024, 3, 5), vendor="Notion"),
    ),
    (
        "vendor-from-israeli-domain",
        Msg("קבלה", 'סה"כ 42 ₪', sender="kabala@rami-levy.co.il"),
        Want("42.00", "ILS", D(2024, 3, 5), vendor="Rami-levy"),
    ),
    (
        "vendor-rfc2047-display-name",
        Msg("קבלה", 'סה"כ 42 ₪', sender="=?UTF-8?B?15HXlten?= <invoices@bezeq.co.il>"),
        Want("42.00", "ILS", D(2024, 3, 5), vendor="בזק"),
    ),
    (
        "date-header-in-sender-timezone",
        Msg("Receipt", "Total: $3.00", date="Tue, 05 Mar 2024 23:30:00 -0800"),
        Want("3.00", "USD", D(2024, 3, 5)),
    ),
    (
        "internal-date-when-no-date-header",
        Msg("Receipt", "Total: $3.00", date=None, internal_date="1709856000000"),
        Want("3.00", "USD", D(2024, 3, 8)),
    ),
    (
        "html-only-table-with-entities",
        Msg(
            "חשבונית מס קבלה",
            html=(
                '<html><head><style>td{color:red}</style></head><body dir="rtl"><table>'
                "<tr><td>תאריך</td><td>12.03.2024</td></tr>"
                "<tr><td>סה&quot;כ\n לתשלום</td><td>&#8362;&nbsp;3,210.00</td></tr>"
                "</table></body></html>"
            ),
        ),
        Want("3210.00", "ILS", D(2024, 3, 12)),
    ),
    (
        "plain-preferred-over-html",
        Msg("Receipt", "Total: $7.00", html="<p>Total: $999.00</p>"),
        Want("7.00", "USD", D(2024, 3, 5)),
    ),
    (
        "windows-1255-charset",
        Msg("קבלה", 'תאריך: 1/3/24\nסה"כ לתשלום: 55.20 ₪', charset="windows-1255"),
        Want("55.20", "ILS", D(2024, 3, 1)),
    ),
    (
        "hebrew-month-name",
        Msg("חשבונית מס", 'תאריך: 5 במרץ 2024\nסה"כ לתשלום 10 ₪'),
        Want("10.00", "ILS", D(2024, 3, 5)),
    ),
    (
        "month-first-only-when-day-first-impossible",
        Msg("Receipt", "Date: 03/25/2024\nTotal $1.00"),
        Want("1.00", "USD", D(2024, 3, 25)),
    ),
    (
        "due-date-is-not-issue-date",
        Msg("Invoice", "Due date: 30/04/2024\nInvoice date: 01/04/2024\nAmount due: €9.00"),
        Want("9.00", "EUR", D(2024, 4, 1)),
    ),
    (
        "label-in-cell-above-amount",
        Msg("Receipt", "TOTAL\n$64.99\nDate: Mar 2, 2024"),
        Want("64.99", "USD", D(2024, 3, 2)),
    ),
    (
        "bidi-marks-and-nbsp",
        Msg("קבלה", 'סה"כ לתשלום:\u200f ₪\u00a01,000.00\u200e'),
        Want("1000.00", "ILS", D(2024, 3, 5)),
    ),
]


@pytest.mark.parametrize(("msg", "want"), [c[1:] for c in RECEIPTS], ids=[c[0] for c in RECEIPTS])
def test_receipts(msg: Msg, want: Want) -> None:
    parsed = parse_receipt(msg.build())
    assert parsed == ParsedReceipt(
        gmail_message_id="18e0f0a1b2c3d4e5",
        vendor=want.vendor,
        amount=Decimal(want.amount),
        currency=want.currency,
        issued_at=want.issued_at,
        subject=msg.subject,
        attachments=want.attachments,
    )
    assert isinstance(parsed, ParsedReceipt)
    assert isinstance(parsed.amount, Decimal)
    assert parsed.amount.as_tuple().exponent == -2


NOT_RECEIPTS: list[tuple[str, Msg]] = [
    (
        "en-newsletter",
        Msg("What's new at GitHub this week", "New features for Actions. Unsubscribe."),
    ),
    (
        "en-sale-with-prices",
        Msg("Flash sale: flights from €19.99", "Book now from €19.99 to Rome!"),
    ),
    (
        "he-newsletter-receive-discount",
        Msg("קבלו 20% הנחה על כל האתר", "רק היום: ₪50 הנחה בקנייה מעל ₪300"),
    ),
    (
        "mentions-invoices-without-total",
        Msg("Tips for freelancers", "Learn how to send an invoice fast."),
    ),
    ("not-a-receipt-pdf", Msg("Your brochure", "See attached.", files=("catalog-2024.pdf",))),
]


@pytest.mark.parametrize("msg", [c[1] for c in NOT_RECEIPTS], ids=[c[0] for c in NOT_RECEIPTS])
def test_not_receipts(msg: Msg) -> None:
    assert isinstance(parse_receipt(msg.build()), NotAReceipt)


MALFORMED: list[tuple[str, Msg, str]] = [
    (
        "he-receipt-without-amount",
        Msg("קבלה מספר 311", "מצורפת הקבלה. תודה!", files=("קבלה_311.pdf",)),
        "no_amount",
    ),
    (
        "en-invoice-without-amount",
        Msg("Your invoice is ready", "Please find your invoice attached."),
        "no_amount",
    ),
    ("impossible-labelled-date", Msg("קבלה", 'תאריך: 00/00/0000\nסה"כ 12 ₪'), "bad_date"),
    ("impossible-iso-date", Msg("Receipt", "Date: 2024-02-30\nTotal $1.00"), "bad_date"),
    ("malformed-thousands", Msg("Invoice", "Total: $1,23,4.50"), "bad_amount"),
    ("no-currency-anywhere", Msg("Invoice 8", "Total: 100.00"), "no_currency"),
    (
        "two-currencies-bare-total",
        Msg("Invoice 9", "Fee $5.00\nFee €4.00\nTotal: 100.00"),
        "ambiguous_currency",
    ),
    (
        "mislabelled-charset",
        Msg("קבלה", 'סה"כ 12 ₪ תודה', charset="windows-1255"),
        "undecodable_body",
    ),
    ("no-sender", Msg("Receipt", "Total: $1.00", sender=None), "no_sender"),
]


@pytest.mark.parametrize(("msg", "code"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed(msg: Msg, code: str) -> None:
    message = msg.build()
    if code == "undecodable_body":
        # Hebrew sent in windows-1255 but labelled UTF-8: a common misconfigured mailer.
        part = message["payload"]
        part["headers"] = [
            h if h["name"] != "Content-Type" else {**h, "value": "text/plain; charset=utf-8"}
            for h in part["headers"]
        ]
    with pytest.raises(MalformedReceipt) as caught:
        parse_receipt(message)
    assert caught.value.code == code


def test_invalid_base64_is_undecodable() -> None:
    message = Msg("Receipt", "Total: $1.00").build()
    message["payload"]["body"]["data"] = "not*base64!"
    with pytest.raises(MalformedReceipt) as caught:
        parse_receipt(message)
    assert caught.value.code == "undecodable_body"


def test_undecodable_non_receipt_is_not_a_receipt() -> None:
    message = Msg("Weekly digest", "hello").build()
    message["payload"]["body"]["data"] = "not*base64!"
    assert isinstance(parse_receipt(message), NotAReceipt)


def test_missing_payload() -> None:
    with pytest.raises(MalformedReceipt) as caught:
        parse_receipt({"id": "x", "threadId": "x"})
    assert caught.value.code == "no_payload"


def test_only_pdf_attachments_are_collected() -> None:
    msg = Msg(
        "Invoice",
        "Total: $1.00",
        files=("Invoice-INV-2024-0042.PDF", "receipt.pdf"),
        extra_parts=[attachment("photo.jpg", "image/jpeg"), attachment("data.csv", "text/csv")],
    )
    parsed = parse_receipt(msg.build())
    assert isinstance(parsed, ParsedReceipt)
    assert parsed.attachments == ("Invoice-INV-2024-0042.PDF", "receipt.pdf")


def test_missing_padding_is_accepted() -> None:
    message = Msg("Receipt", "Total: $1.50").build()
    message["payload"]["body"]["data"] = message["payload"]["body"]["data"].rstrip("=")
    parsed = parse_receipt(message)
    assert isinstance(parsed, ParsedReceipt)
    assert parsed.amount == Decimal("1.50")


@pytest.mark.parametrize(
    ("token", "value"),
    [
        ("1234", "1234"),
        ("1,234", "1234"),
        ("1.234", "1234"),
        ("1,234.50", "1234.50"),
        ("1.234,50", "1234.50"),
        ("12,5", "12.5"),
        ("12.50", "12.50"),
        ("1,234,567", "1234567"),
        ("1.234.567,89", "1234567.89"),
        ("0.99", "0.99"),
        ("1,23,4.50", None),
        ("1234.567", None),
        ("1.2.3", None),
        ("12,345.6789", None),
        ("1,234.56.78", None),
    ],
)
def test_number_formats(token: str, value: str | None) -> None:
    assert parse_number(token) == (None if value is None else Decimal(value))
