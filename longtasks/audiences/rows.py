"""Normalizing one chunk of uploaded rows: a pure function, so the import can run it in a
process pool (phonenumbers costs tens of microseconds a number; a worker's event loop must
not carry a million of them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from longtasks.audiences.csv_intake import FIELD_SEP, split_records
from longtasks.domain import RowIssue
from longtasks.phones import normalize_phone

INVALID_PHONE = RowIssue.invalid_phone.value
MISSING_PHONE = RowIssue.missing_phone.value
TOO_MANY_FIELDS = RowIssue.too_many_fields.value


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str
    detail: str
    # As uploaded (clipped), and the row's variables joined by US.
    phone: str
    vars: str


@dataclass
class NormalizedChunk:
    """The chunk's valid rows (line, E.164, variables joined by US) and its invalid rows."""

    valid_lines: list[int] = field(default_factory=list)
    valid_phones: list[str] = field(default_factory=list)
    valid_vars: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def normalize_chunk(
    lines: list[int], records: str, *, phone_index: int, columns: int, region: str
) -> NormalizedChunk:
    out = NormalizedChunk()
    for line, fields in zip(lines, split_records(records), strict=True):
        if len(fields) > columns and any(f.strip() for f in fields[columns:]):
            phone = fields[phone_index] if phone_index < len(fields) else ""
            out.errors.append(
                RowError(
                    line,
                    TOO_MANY_FIELDS,
                    f"the row has {len(fields)} fields, the header {columns}",
                    phone.strip()[:64],
                    FIELD_SEP.join(_variables(fields[:columns], phone_index, columns)),
                )
            )
            continue
        values = _variables(fields, phone_index, columns)
        raw = fields[phone_index].strip() if phone_index < len(fields) else ""
        if not raw:
            out.errors.append(
                RowError(line, MISSING_PHONE, "the phone cell is empty", "", FIELD_SEP.join(values))
            )
            continue
        e164, reason = normalize_phone(raw, region)
        if e164 is None:
            out.errors.append(
                RowError(line, INVALID_PHONE, reason or "invalid", raw[:64], FIELD_SEP.join(values))
            )
            continue
        out.valid_lines.append(line)
        out.valid_phones.append(e164)
        out.valid_vars.append(FIELD_SEP.join(values))
    return out


def _variables(fields: list[str], phone_index: int, columns: int) -> list[str]:
    """Every column but the phone, trimmed, a missing trailing cell read as empty."""
    values = [f.strip() for i, f in enumerate(fields[:columns]) if i != phone_index]
    missing = columns - 1 - len(values)
    return values + [""] * missing if missing > 0 else values
