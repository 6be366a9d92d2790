"""Recipient intake: normalize phone numbers to E.164, drop duplicates, explain invalid ones."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat


@dataclass(frozen=True)
class NormalizedRecipients:
    """Valid numbers in E.164 first-seen order, then the invalid inputs with their reason."""

    valid: list[str]
    invalid: list[tuple[str, str]]
    duplicates_dropped: int


def normalize_phone(raw: str, default_region: str) -> tuple[str | None, str | None]:
    """(E.164, None) for a valid number, (None, reason) otherwise. 052-1234567 works in IL."""
    text = raw.strip()
    if not text:
        return None, "empty"
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException as exc:
        return None, f"not a phone number: {exc._msg}"
    if not phonenumbers.is_valid_number(number):
        return None, "not a valid number for its region"
    return phonenumbers.format_number(number, PhoneNumberFormat.E164), None


def normalize_recipients(raws: Iterable[str], default_region: str) -> NormalizedRecipients:
    seen: set[str] = set()
    valid: list[str] = []
    invalid: list[tuple[str, str]] = []
    seen_invalid: set[str] = set()
    duplicates = 0
    for raw in raws:
        e164, reason = normalize_phone(raw, default_region)
        if e164 is not None:
            if e164 in seen:
                duplicates += 1
                continue
            seen.add(e164)
            valid.append(e164)
        else:
            shown = raw.strip()[:64]
            if shown in seen_invalid:
                duplicates += 1
                continue
            seen_invalid.add(shown)
            invalid.append((shown, reason or "invalid"))
    return NormalizedRecipients(valid=valid, invalid=invalid, duplicates_dropped=duplicates)
