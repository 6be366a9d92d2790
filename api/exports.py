"""What CSV exports share: a cell a spreadsheet shows and never evaluates."""

from __future__ import annotations


def csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    # Spreadsheet formula injection: a cell starting with = + - @ is shown, not evaluated.
    if text[:1] in ("=", "+", "-", "@") and not text[1:2].isdigit():
        return "'" + text
    return text
