"""Recipients for `longtasks broadcast --recipients FILE`: a CSV or a plain list, from a file or
stdin, as spreadsheets export them (UTF-8 with or without BOM, or Windows-1255 from a Hebrew
Excel; comma, semicolon or tab). Numbers are passed on as written: the API normalizes them and
reports the invalid ones."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import TextIO

from cli.errors import CliError

PHONE_HEADERS = frozenset(
    {"phone", "phones", "phone number", "phone_number", "mobile", "טלפון", "מספר טלפון", "נייד"}
)


def parse_csv(text: str) -> list[list[str]]:
    """Rows of a CSV (comma, semicolon or tab, guessed from the first line), blank rows dropped."""
    text = text.removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    if first_line.count(delimiter) == 0:
        delimiter = ","
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return [row for row in rows if any(cell.strip() for cell in row)]


def recipients_from_text(text: str) -> list[str]:
    """Phones from a CSV or a plain list (one per line).

    The column named phone/טלפון (any case) when the header has one, else the first column; a
    first row whose first column has no digit is a header and is skipped.
    """
    rows = parse_csv(text)
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((i for i, name in enumerate(header) if name in PHONE_HEADERS), None)
    body = rows
    if column is not None:
        body = rows[1:]
    else:
        column = 0
        first = rows[0][0] if rows[0] else ""
        if not any(ch.isdigit() for ch in first):
            body = rows[1:]
    return [row[column].strip() for row in body if len(row) > column and row[column].strip()]


def read_text_file(path: str, stdin: TextIO | None = None) -> str:
    """UTF-8 (with or without BOM), else Windows-1255 (Hebrew Excel); `-` reads stdin."""
    if path == "-":
        return (stdin or sys.stdin).read()
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1255", errors="replace")


def read_recipients(path: str, stdin: TextIO | None = None) -> list[str]:
    try:
        recipients = recipients_from_text(read_text_file(path, stdin))
    except csv.Error as exc:
        raise CliError(f"{path} is not a readable CSV: {exc}") from exc
    if not recipients:
        raise CliError(f"no phone numbers in {path}")
    return recipients
