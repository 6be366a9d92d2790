"""Reading a Gmail API message resource: headers, the readable body text, PDF attachment names.

Gmail's `body.data` is the part's content after transfer decoding (no quoted-printable or
base64 left to undo), base64url-encoded, in the charset its Content-Type names.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from html.parser import HTMLParser
from typing import Any

# Labels mail clients send that Python's codec registry does not know, or knows under another name.
_CHARSET_ALIASES = {
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-8-e": "iso-8859-8",
    "visual": "iso-8859-8",
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
}

# Direction marks are invisible in Hebrew mail but split tokens like "₪\u200f1,234".
_BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c\ufeff]")
_SPACES = re.compile("[\u00a0\u202f\u2007\u2009]")


class UndecodableBodyError(Exception):
    """No text part of the message could be decoded."""


def headers_of(part: dict[str, Any]) -> dict[str, str]:
    """Header names lower-cased, first occurrence wins (as mail readers show them)."""
    out: dict[str, str] = {}
    for header in part.get("headers") or ():
        name = str(header.get("name", "")).lower()
        if name and name not in out:
            out[name] = decode_words(str(header.get("value", "")))
    return out


def decode_words(value: str) -> str:
    """Undo RFC 2047 encoded-words; Gmail usually has, but raw relays do not."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeDecodeError):
        return value


def walk(part: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield part
    for child in part.get("parts") or ():
        yield from walk(child)


def _content_type(part: dict[str, Any]) -> tuple[str, dict[str, str]]:
    header = headers_of(part).get("content-type")
    mime_type = str(part.get("mimeType") or "").lower()
    params: dict[str, str] = {}
    if header:
        message = Message()
        message["content-type"] = header
        mime_type = mime_type or message.get_content_type()
        for key, value in message.get_params(failobj=[])[1:]:
            params[key.lower()] = str(value)
    return mime_type, params


def _is_attachment(part: dict[str, Any]) -> bool:
    if part.get("filename"):
        return True
    disposition = headers_of(part).get("content-disposition", "")
    return disposition.lower().startswith("attachment")


def pdf_attachments(payload: dict[str, Any]) -> tuple[str, ...]:
    names = []
    for part in walk(payload):
        filename = str(part.get("filename") or "")
        if filename and filename.lower().endswith(".pdf"):
            names.append(filename)
    return tuple(names)


def _decode_data(data: str, charset: str) -> str:
    raw = base64.b64decode(data + "=" * (-len(data) % 4), altchars=b"-_", validate=True)
    name = _CHARSET_ALIASES.get(charset.lower(), charset.lower())
    try:
        codecs.lookup(name)
    except LookupError:
        name = "utf-8"
    return raw.decode(name)


def body_text(payload: dict[str, Any]) -> str:
    """The message's readable text: its text/plain parts, else its text/html parts as text.

    Raises `UndecodableBodyError` when the message has text parts and none of them decodes.
    """
    plain: list[dict[str, Any]] = []
    html: list[dict[str, Any]] = []
    for part in walk(payload):
        if part.get("parts") or _is_attachment(part):
            continue
        mime_type, _ = _content_type(part)
        if mime_type == "text/plain":
            plain.append(part)
        elif mime_type == "text/html":
            html.append(part)
    if not plain and not html:
        return ""
    for parts, is_html in ((plain, False), (html, True)):
        texts = []
        for part in parts:
            data = (part.get("body") or {}).get("data")
            if not data:
                continue
            try:
                text = _decode_data(str(data), _content_type(part)[1].get("charset", "utf-8"))
            except (binascii.Error, ValueError):
                continue
            texts.append(html_to_text(text) if is_html else text)
        if texts:
            return normalize("\n".join(texts))
    raise UndecodableBodyError("no text part of the message could be decoded")


def normalize(text: str) -> str:
    text = _BIDI_CONTROLS.sub("", text)
    text = _SPACES.sub(" ", text)
    return text.replace("\r\n", "\n").replace("\r", "\n")


_BLOCK_TAGS = frozenset(
    {
        "br",
        "p",
        "div",
        "tr",
        "li",
        "ul",
        "ol",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "section",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "header",
        "footer",
        "article",
        "blockquote",
    }
)
_CELL_TAGS = frozenset({"td", "th"})
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title"})
_WHITESPACE_RUN = re.compile(r"\s+")
_CELL_GAP = re.compile(r"[ \t]*\t[ \t]*")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")
        elif tag in _CELL_TAGS:
            # Label and value cells of one table row must stay on one line.
            self.chunks.append("\t")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            # HTML collapses whitespace: a newline inside a cell is not a line break.
            self.chunks.append(_WHITESPACE_RUN.sub(" ", data))


def html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (_CELL_GAP.sub("\t", line).strip() for line in "".join(extractor.chunks).split("\n"))
    return "\n".join(line for line in lines if line)
