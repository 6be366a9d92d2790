"""Money in receipt text: currency markers, number formats, and which amount is the total.

Number formats (a decision, since "1,234" and "1.234" are ambiguous in isolation):
- Both "," and "." in one number: the last one is the decimal separator, the other groups
  thousands, so "1,234.50" (Israel, US, UK) and "1.234,50" (continental Europe) both read 1234.50.
- One kind of separator, repeated ("1,234,567" or "1.234.567"): thousands grouping.
- One separator, once: followed by exactly three digits it groups thousands ("1,234" and "1.234"
  are 1234), followed by one or two digits it is the decimal point ("12,5" and "12.50").
  ILS, USD and EUR have two minor digits, so a three-digit fraction is never a price.
- Space-grouped thousands ("1 234,50") are not read: a space also separates adjacent numbers.
Thousands groups must be exactly three digits after a first group of one to three; anything
else ("1,23,4.50") is not a number and, next to a total label, makes the receipt `bad_amount`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from longtasks.receipt_parsing.results import MalformedReceipt

# Hebrew abbreviations are written with gershayim: the ASCII quote, U+05F4, two gereshes, two
# apostrophes, or a typographic quote substituted by a word processor.
GERSHAYIM = "(?:\"|\u05f4|''|\u05f3\u05f3|\u201d|\u201c)"

_CURRENCY_PATTERNS: tuple[tuple[str, str], ...] = (
    ("ILS", rf"₪|(?i:\bNIS\b|\bILS\b)|ש{GERSHAYIM}ח|שקלים|שקל(?![א-ת])|ש\.ח\.?"),
    ("USD", r"(?i:\bUS\$|\bUSD\b)|(?<![A-Za-z])\$|דולר(?:ים)?"),
    ("EUR", r"€|(?i:\bEUR\b|\beuros?\b)|יורו"),
    ("GBP", r"£|(?i:\bGBP\b)"),
)
_CURRENCY_BY_CODE = {code: re.compile(pattern) for code, pattern in _CURRENCY_PATTERNS}
CURRENCY = "(?:" + "|".join(pattern for _, pattern in _CURRENCY_PATTERNS) + ")"
_CURRENCY_RE = re.compile(CURRENCY)

_NUMBER = r"(?<![\d.,])\d+(?:[.,]\d+)*"
_GAP = r"[ \t]{0,2}"
_MONEY_RE = re.compile(
    rf"(?P<pre>{CURRENCY}){_GAP}(?P<n1>{_NUMBER})|(?P<n2>{_NUMBER}){_GAP}(?P<post>{CURRENCY})"
)
# A bare number next to a label, but not part of a date, time, percentage or reference number.
_BARE_NUMBER_RE = re.compile(r"(?<![\w.,/:#-])\d+(?:[.,]\d+)*(?![\w/%:-])(?![.,]\d)")

_G = GERSHAYIM
# Total labels by strength: "amount to pay" beats "total", which beats a bare "amount".
_LABELS: tuple[tuple[int, re.Pattern[str]], ...] = (
    (
        3,
        re.compile(
            rf"סה{_G}כ\s*(?:ל?תשלום|שולם|לחיוב|כולל\s+מע{_G}מ)|סכום\s+(?:ל?תשלום|החיוב|העסקה|כולל)"
            r"|(?i:total\s+(?:due|paid|charged|amount|to\s+pay)|amount\s+(?:due|paid|charged)"
            r"|grand\s+total|order\s+total|total\s*\(incl)"
        ),
    ),
    (2, re.compile(rf"סה{_G}כ|סך\s+ה?כו?ל|לתשלום|(?i:\btotal\b)")),
    (1, re.compile(r"סכום|(?i:\bamount\b|\bcharged\b|\bprice\b)")),
)
# Lines that carry a total label but not the total (subtotals, tax lines).
_NOT_THE_TOTAL = re.compile(
    rf"ביניים|לפני\s+מע{_G}מ|ללא\s+מע{_G}מ|סה{_G}כ\s+מע{_G}מ"
    r"|(?i:sub-?\s?total|before\s+(?:tax|vat)|excl\w*|total\s+(?:tax|vat)|(?:tax|vat)\s+total"
    r"|total\s+items|total\s+savings|you\s+saved)"
)

_QUANTUM = Decimal("0.01")


def currency_code(token: str) -> str:
    for code, pattern in _CURRENCY_BY_CODE.items():
        if pattern.fullmatch(token):
            return code
    raise ValueError(f"not a currency marker: {token!r}")


def parse_number(token: str) -> Decimal | None:
    """Read a number written with "," and "." separators; `None` if it is not a valid one."""
    separators = [ch for ch in token if ch in ",."]
    if not separators:
        return Decimal(token)
    groups = re.split(r"[.,]", token)
    decimal_sep: str | None = None
    if len(set(separators)) == 2:
        decimal_sep = separators[-1]
        if separators.count(decimal_sep) != 1:
            return None
    elif len(separators) == 1 and len(groups[-1]) in (1, 2):
        decimal_sep = separators[0]
    if decimal_sep is not None:
        fraction = groups.pop()
        if len(fraction) not in (1, 2):
            return None
    else:
        fraction = ""
    if len(groups) > 1 and (
        not 1 <= len(groups[0]) <= 3 or any(len(group) != 3 for group in groups[1:])
    ):
        return None
    return Decimal("".join(groups) + ("." + fraction if fraction else ""))


@dataclass(frozen=True)
class Money:
    amount: Decimal | None  # None: written like money but not a valid number
    currency: str | None
    start: int


def money_in(text: str) -> list[Money]:
    found = []
    for match in _MONEY_RE.finditer(text):
        number = match.group("n1") or match.group("n2")
        marker = match.group("pre") or match.group("post")
        found.append(Money(parse_number(number), currency_code(marker), match.start()))
    return found


def _bare_numbers(text: str) -> list[Money]:
    return [Money(parse_number(m.group()), None, m.start()) for m in _BARE_NUMBER_RE.finditer(text)]


@dataclass(frozen=True)
class _Candidate:
    money: Money
    priority: int
    position: int  # line number; later lines win ties, since totals close a receipt

    def rank(self) -> tuple[int, bool, int]:
        return (self.priority, self.money.currency is not None, self.position)


def _label_candidate(lines: list[str], index: int) -> _Candidate | None:
    line = lines[index]
    if _NOT_THE_TOTAL.search(line):
        return None
    for priority, pattern in _LABELS:
        label = pattern.search(line)
        if label is None:
            continue
        after = line[label.end() :]
        options = money_in(after) or money_in(line) or _bare_numbers(after)
        if not options:
            following = next((ln for ln in lines[index + 1 :] if ln.strip()), "")
            if not any(p.search(following) for _, p in _LABELS):
                options = money_in(following) or _bare_numbers(following)[:1]
        if options:
            return _Candidate(options[0], priority, index)
        return None
    return None


def find_total(subject: str, body: str) -> tuple[Decimal, str]:
    """The receipt's total and its currency.

    In order: the strongest total label in the body (ties: the later line, and an amount with a
    currency over a bare number), then the first amount with a currency in the subject, then the
    largest amount with a currency in the body. A bare labelled number takes the currency the
    message uses, when it uses exactly one.
    """
    lines = [subject, *body.split("\n")]
    candidates = [c for i in range(len(lines)) if (c := _label_candidate(lines, i)) is not None]
    chosen: Money | None = None
    if candidates:
        chosen = max(candidates, key=_Candidate.rank).money
    if chosen is None:
        chosen = next((m for m in money_in(subject) if m.amount is not None), None)
    if chosen is None:
        valid = [m for m in money_in(body) if m.amount is not None]
        if valid:
            chosen = max(valid, key=lambda m: m.amount or Decimal(0))
    if chosen is None:
        raise MalformedReceipt("no_amount", "no amount found in the subject or body")
    if chosen.amount is None:
        raise MalformedReceipt("bad_amount", "the total is not a well-formed number")
    currency = chosen.currency or _only_currency(subject + "\n" + body)
    return chosen.amount.quantize(_QUANTUM), currency


def _only_currency(text: str) -> str:
    codes = {m.currency for m in money_in(text) if m.currency is not None}
    if not codes:
        codes = {currency_code(m.group()) for m in _CURRENCY_RE.finditer(text)}
    if len(codes) == 1:
        return codes.pop()
    if not codes:
        raise MalformedReceipt("no_currency", "the total names no currency and the message none")
    raise MalformedReceipt(
        "ambiguous_currency", f"the total names no currency and the message uses {sorted(codes)}"
    )
