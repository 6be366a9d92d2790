"""The date a receipt was issued, as its body states it.

Only dates on a labelled line count ("תאריך:", "Date:", "Invoice date", "Issued on"), so a
delivery window or a card's expiry is never mistaken for the receipt's date. Numeric dates are
day-first (Israel and Europe write 05/03/2024 for 5 March); month-first is used only when
day-first is impossible (03/25/2024). ISO dates, English month names and Hebrew month names
("5 במרץ 2024") are read too. A labelled date that is not a real date ("00/00/0000") makes the
receipt `bad_date` rather than silently falling back to the email's date.
"""

from __future__ import annotations

import datetime
import re

from longtasks.receipt_parsing.results import MalformedReceipt

_LABEL = re.compile(
    r"תאריך|(?i:\bdate\b|\bdated\b|\bissued\b|\bpaid\s+on\b|\bbilled\s+on\b|\bcharged\s+on\b)"
)
_NOT_ISSUE_DATE = re.compile(
    r"תוקף|אחרון|אספקה|משלוח|(?i:\bdue\b|\buntil\b|\bexpir\w*|\bvalid\b|\bdeliver\w*|\bnext\b"
    r"|\bstart\w*|\bend\w*|\brenew\w*)"
)

_EN_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_HE_MONTHS = {
    "ינואר": 1,
    "פברואר": 2,
    "מרץ": 3,
    "מרס": 3,
    "אפריל": 4,
    "מאי": 5,
    "יוני": 6,
    "יולי": 7,
    "אוגוסט": 8,
    "ספטמבר": 9,
    "אוקטובר": 10,
    "נובמבר": 11,
    "דצמבר": 12,
}
_EN_MONTH = "(?i:" + "|".join(sorted(_EN_MONTHS, key=len, reverse=True)) + r")\.?"
_HE_MONTH = "ב?-?(?:" + "|".join(_HE_MONTHS) + ")"

_DATE_RE = re.compile(
    r"(?P<iso>\b(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})\b)"
    r"|(?P<num>(?<![\d.,/])(?P<na>\d{1,2})(?P<sep>[./])(?P<nb>\d{1,2})(?P=sep)(?P<ny>\d{4}|\d{2})"
    r"(?![\d.,/]\d))"
    rf"|(?P<mdy>\b(?P<m1>{_EN_MONTH})\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y1>\d{{4}})\b)"
    rf"|(?P<dmy>\b(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{_EN_MONTH}),?\s+"
    r"(?P<y2>\d{4})\b)"
    rf"|(?P<heb>\b(?P<d3>\d{{1,2}})\s+(?P<m3>{_HE_MONTH})\s+(?P<y3>\d{{4}})\b)"
)


def _month(name: str, table: dict[str, int]) -> int:
    return table[name.lower().rstrip(".").lstrip("ב-")]


def _from_match(match: re.Match[str]) -> datetime.date | None:
    try:
        if match.group("iso"):
            return datetime.date(int(match["iy"]), int(match["im"]), int(match["id"]))
        for kind, y, m, d, months in (
            ("mdy", "y1", "m1", "d1", _EN_MONTHS),
            ("dmy", "y2", "m2", "d2", _EN_MONTHS),
            ("heb", "y3", "m3", "d3", _HE_MONTHS),
        ):
            if match.group(kind):
                return datetime.date(int(match[y]), _month(match[m], months), int(match[d]))
    except ValueError:
        return None
    year = int(match["ny"])
    year = year + 2000 if year < 100 else year
    first, second = int(match["na"]), int(match["nb"])
    for day, month in ((first, second), (second, first)):
        try:
            return datetime.date(year, month, day)
        except ValueError:
            continue
    return None


def find_issued_date(body: str) -> datetime.date | None:
    """The first date on a line labelled as the issue date, or `None` if the body states none.

    Raises `MalformedReceipt("bad_date")` when a labelled date cannot be a calendar date.
    """
    lines = body.split("\n")
    for index, line in enumerate(lines):
        label = _LABEL.search(line)
        if label is None or _NOT_ISSUE_DATE.search(line):
            continue
        match = _DATE_RE.search(line, label.end()) or _DATE_RE.search(line)
        if match is None:
            following = next((ln for ln in lines[index + 1 :] if ln.strip()), "")
            match = None if _LABEL.search(following) else _DATE_RE.search(following)
        if match is None:
            continue
        issued = _from_match(match)
        if issued is None:
            raise MalformedReceipt("bad_date", f"the stated date {match.group()!r} is not a date")
        return issued
    return None
