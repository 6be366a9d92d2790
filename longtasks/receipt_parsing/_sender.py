"""The vendor a receipt is from, as its sender presents itself."""

from __future__ import annotations

from email.utils import parseaddr

from longtasks.receipt_parsing._mime import decode_words

# Second-level labels under a country code ("co.il", "org.uk") are not the vendor's name.
_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "ac", "gov", "muni", "edu", "ltd", "plc"})


def vendor_from_sender(from_header: str) -> str | None:
    """The From display name, else the registrable label of the sender's domain, capitalized.

    `"Wolt" <info@wolt.com>` is "Wolt"; `<billing@mail.notion.so>` is "Notion";
    `<kabala@rami-levy.co.il>` is "Rami-levy".
    """
    name, address = parseaddr(from_header)
    name = decode_words(name).strip().strip("\"'").strip()
    if name and "@" not in name:
        return name
    domain = address.rpartition("@")[2].strip().strip(">").lower()
    labels = [label for label in domain.split(".") if label]
    if not labels:
        return None
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        labels = labels[:-2]
    elif len(labels) >= 2:
        labels = labels[:-1]
    label = labels[-1]
    return label[:1].upper() + label[1:]
