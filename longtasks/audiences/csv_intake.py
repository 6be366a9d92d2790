"""Streaming CSV intake: bytes in as they arrive, chunks of records out, memory flat.

A customer list from a spreadsheet: a header row with a phone column, any other columns as
variables; UTF-8 with or without a byte-order mark; commas, or Excel's semicolons (and its
`sep=;` hint line), or tabs; quoted fields, also across lines; Hebrew or any other script.

The intake does not validate rows (normalizing phone numbers is the import task's work, in
parallel pages); it only cuts the upload into records and refuses, as a whole, what is not a
CSV at all or too large. A refusal (`CsvRefused`) carries its HTTP status and a reason a person
can act on; the caller keeps nothing of such a file.

Records leave in chunks of `chunk_rows`, each chunk one row of the staging table: the first
physical line of every record, and the records joined by RS (0x1e) with their fields joined by
US (0x1f). Control characters never occur in a text file, so a file holding either is refused
as binary and the separators cannot clash with data.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from dataclasses import dataclass

RECORD_SEP = "\x1e"
FIELD_SEP = "\x1f"

# Header names taken for the phone column when the caller names none (compared casefolded,
# without spaces, underscores or hyphens).
PHONE_ALIASES = frozenset(
    {
        "phone",
        "phonenumber",
        "phoneno",
        "mobile",
        "mobilephone",
        "mobilenumber",
        "cell",
        "cellphone",
        "tel",
        "telephone",
        "whatsapp",
        "whatsappnumber",
        "msisdn",
        "טלפון",
        "נייד",
        "טלפוןנייד",
        "מספרטלפון",
    }
)
DELIMITERS = (",", ";", "\t", "|")
# Columns a header may name (a row's extra fields are that row's error, found by the import).
MAX_COLUMNS = 100
# Python's csv module refuses longer fields; a field this long is an unclosed quote.
MAX_FIELD_CHARS = csv.field_size_limit()

_BLANK = FIELD_SEP + " \t\r\n\x0b\x0c\xa0"
# C0 controls but tab, LF, VT, FF and CR: no spreadsheet writes them, binary files are full of
# them. Translated to 0 (everything else to 1), found with one bytes.find: C speed.
_CONTROL_TABLE = bytes(0 if b < 0x20 and b not in b"\t\n\x0b\x0c\r" else 1 for b in range(256))
_SIGNATURES = (
    (
        b"PK\x03\x04",
        "an Excel workbook or another zip file; save it as 'CSV UTF-8' and upload that",
    ),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls); save it as 'CSV UTF-8' and upload that"),
    (b"%PDF", "a PDF document, not a CSV file"),
    (b"\xff\xfe", "UTF-16 text; save it as 'CSV UTF-8' and upload that"),
    (b"\xfe\xff", "UTF-16 text; save it as 'CSV UTF-8' and upload that"),
)


class CsvRefused(Exception):
    """The upload as a whole is not taken; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Header:
    columns: tuple[str, ...]
    phone_index: int
    delimiter: str

    @property
    def variables(self) -> tuple[str, ...]:
        """The columns a template may name: every column but the phone."""
        return tuple(c for i, c in enumerate(self.columns) if i != self.phone_index)


@dataclass(frozen=True)
class Chunk:
    """Records `index * chunk_rows + 1 ..` of the upload, as one staging row."""

    index: int
    lines: list[int]
    records: str

    @property
    def size(self) -> int:
        return len(self.lines)


def normalize_header_name(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name).casefold()


def split_records(records: str) -> list[list[str]]:
    """A chunk's records back as lists of fields."""
    return [r.split(FIELD_SEP) for r in records.split(RECORD_SEP)] if records else []


def _unfinished(lines: list[str], delimiter: str) -> bool:
    """Do these lines end inside a quoted field (the record goes on in lines not read yet)?"""
    try:
        next(csv.reader(lines, delimiter=delimiter, strict=True))
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    except StopIteration:
        return False
    return False


class CsvIntake:
    """Feed the body's bytes with `feed`, then call `close`; both return finished chunks."""

    def __init__(
        self,
        *,
        chunk_rows: int,
        max_rows: int,
        max_bytes: int,
        max_line_chars: int = 1 << 20,
        phone_column: str | None = None,
    ) -> None:
        self._chunk_rows = chunk_rows
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._max_line_chars = max_line_chars
        self._phone_column = phone_column
        # The delimiter Excel's `sep=;` hint line named, if the file starts with one.
        self._hinted: str | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self.bytes_received = 0
        self.rows = 0
        self.header: Header | None = None
        self._started = False
        # Physical lines handed to the reader so far (1-based numbering of the file's lines).
        self._line_no = 0
        self._tail = ""  # text after the last newline, waiting for its end
        # Lines of a record cut off at the end of the text so far: parsed again with the next.
        self._carry: list[str] = []
        self._chunk_index = 0
        self._lines: list[int] = []
        self._records: list[str] = []

    # -- input ---------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Chunk]:
        if not data:
            return []
        if not self._started:
            self._started = True
            for signature, what in _SIGNATURES:
                if data.startswith(signature):
                    raise CsvRefused(415, f"the file is {what}")
        self.bytes_received += len(data)
        if self.bytes_received > self._max_bytes:
            raise CsvRefused(
                413, f"the file is larger than {self._max_bytes:,} bytes (MAX_AUDIENCE_BYTES)"
            )
        control = data.translate(_CONTROL_TABLE).find(0)
        if control >= 0:
            line = self._lines_seen() + data.count(b"\n", 0, control)
            raise CsvRefused(
                415, f"the file is binary, not CSV text (a control character on line {line + 1:,})"
            )
        try:
            text = self._decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise self._not_utf8(data, exc) from exc
        return self._take_text(text, final=False)

    def close(self) -> list[Chunk]:
        try:
            text = self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise CsvRefused(
                415, "the file ends in the middle of a character: it is not UTF-8 text"
            ) from exc
        chunks = self._take_text(text, final=True)
        if self.header is None:
            raise CsvRefused(422, "the file is empty: a header row with a phone column is needed")
        if self.rows == 0:
            raise CsvRefused(422, "the file has a header row but no rows")
        if self._records:
            chunks.append(self._cut())
        return chunks

    def _not_utf8(self, data: bytes, exc: UnicodeDecodeError) -> CsvRefused:
        line = self._lines_seen() + data.count(b"\n", 0, max(exc.start, 0)) + 1
        return CsvRefused(
            415,
            f"the file is not UTF-8 text (line {line:,}); save it as 'CSV UTF-8' and upload that",
        )

    def _take_text(self, text: str, *, final: bool) -> list[Chunk]:
        text = self._tail + text
        cut = len(text) if final else text.rfind("\n") + 1
        self._tail = text[cut:]
        if len(self._tail) > self._max_line_chars:
            raise self._line_too_long(self._lines_seen() + text.count("\n", 0, cut))
        if cut == 0 and not (final and self._carry):
            return []
        batch = text[:cut]
        if self.header is not None and not self._carry and '"' not in batch:
            return self._take_plain(batch)
        lines = batch.split("\n")
        # split() leaves "" after the last newline; every other piece gets its newline back.
        last = lines.pop()
        lines = [line + "\n" for line in lines]
        if last:
            lines.append(last)
        if cut > self._max_line_chars:
            longest = max(range(len(lines)), key=lambda i: len(lines[i]))
            if len(lines[longest]) > self._max_line_chars:
                raise self._line_too_long(self._lines_seen() + longest)
        return self._parse(self._carry + lines, final=final)

    def _take_plain(self, batch: str) -> list[Chunk]:
        """Whole lines without a quote: a line is a record and its fields lie between the
        delimiters, so string methods over the whole batch do the work (most customer lists
        are like this, and the csv module's loop costs several times more per row)."""
        assert self.header is not None
        records = batch.replace("\r\n", "\n").replace(self.header.delimiter, FIELD_SEP).split("\n")
        if records[-1] == "":
            records.pop()
        elif records[-1].endswith("\r"):  # the file's last line, ending in a lone CR
            records[-1] = records[-1][:-1]
        if len(batch) > self._max_line_chars:
            longest = max(range(len(records)), key=lambda i: len(records[i]))
            if len(records[longest]) > self._max_line_chars:
                raise self._line_too_long(self._line_no + longest)
        base = self._line_no
        self._line_no += len(records)
        return self._take_records(list(range(base + 1, base + 1 + len(records))), records)

    def _lines_seen(self) -> int:
        """Lines before the text not parsed yet: the file's lines read into records."""
        return self._line_no + len(self._carry)

    def _line_too_long(self, lines_before: int) -> CsvRefused:
        return CsvRefused(
            422,
            f"line {lines_before + 1:,} is longer than {self._max_line_chars:,} characters;"
            " is this a CSV file?",
        )

    # -- records -------------------------------------------------------------------------------

    def _parse(self, lines: list[str], *, final: bool) -> list[Chunk]:
        """Records out of whole lines (`lines` starts where the last record ended)."""
        self._carry = []
        if self.header is None:
            lines = self._read_header(lines)
            if self.header is None:
                return []
        base = self._line_no
        numbers, records = self._parse_quoted(lines, base, final=final)
        self._line_no = base + len(lines) - len(self._carry)
        if sum(map(len, self._carry)) > MAX_FIELD_CHARS * 2:
            raise CsvRefused(
                422,
                f"line {self._line_no + 1:,}: a quoted field runs over"
                f" {MAX_FIELD_CHARS:,} characters; is a closing quote missing?",
            )
        return self._take_records(numbers, records)

    def _parse_quoted(
        self, lines: list[str], base: int, *, final: bool
    ) -> tuple[list[int], list[str]]:
        """The csv module's reader, one per batch over a list, so the loop stays in C; only
        the batch's last record can be cut off (a quoted field going on in later lines)."""
        assert self.header is not None
        delimiter = self.header.delimiter
        count = len(lines)
        try:
            # First as if each line were one record (quoted commas, no line breaks in fields):
            # then the line numbers need no bookkeeping per row.
            simple = list(map(FIELD_SEP.join, csv.reader(lines, delimiter=delimiter)))
        except csv.Error:
            simple = []  # the loop below finds the line and says what is wrong
        if len(simple) == count and not (simple and simple[-1].endswith("\n")):
            return list(range(base + 1, base + 1 + count)), simple
        reader = csv.reader(lines, delimiter=delimiter, strict=False)
        numbers: list[int] = []
        records: list[str] = []
        before = 0  # lines the reader had read before the current record
        try:
            for row in reader:
                after = reader.line_num
                if (
                    after == count
                    and row
                    and row[-1].endswith("\n")
                    and _unfinished(lines[before:], delimiter)
                ):
                    if not final:
                        self._carry = lines[before:]
                        break
                    raise CsvRefused(
                        422, f"line {base + before + 1:,}: a quoted field is never closed"
                    )
                numbers.append(base + before + 1)
                records.append(FIELD_SEP.join(row))
                before = after
        except csv.Error as exc:
            raise self._malformed(base + before + 1, exc) from exc
        return numbers, records

    def _take_records(self, numbers: list[int], records: list[str]) -> list[Chunk]:
        # map() calls str.strip without a Python frame per record: most batches have no blank
        # record, and this finds that at C speed.
        if not all(map(str.strip, records, itertools.repeat(_BLANK))):
            # Blank lines, rows of empty cells: not rows of the list.
            blank = [not r.strip(_BLANK) for r in records]
            numbers = [n for n, b in zip(numbers, blank, strict=True) if not b]
            records = [r for r, b in zip(records, blank, strict=True) if not b]
        self.rows += len(records)
        if self.rows > self._max_rows:
            raise CsvRefused(
                413, f"the file has more than {self._max_rows:,} rows (MAX_AUDIENCE_ROWS)"
            )
        chunks: list[Chunk] = []
        while records:
            room = self._chunk_rows - len(self._records)
            self._lines += numbers[:room]
            self._records += records[:room]
            numbers, records = numbers[room:], records[room:]
            if len(self._records) >= self._chunk_rows:
                chunks.append(self._cut())
        return chunks

    def _malformed(self, line: int, exc: csv.Error) -> CsvRefused:
        if "field larger than field limit" in str(exc):
            return CsvRefused(
                422,
                f"line {line:,}: a field is longer than {MAX_FIELD_CHARS:,} characters;"
                " is a closing quote missing?",
            )
        return CsvRefused(422, f"line {line:,} is not valid CSV: {exc}")

    def _cut(self) -> Chunk:
        chunk = Chunk(self._chunk_index, self._lines, RECORD_SEP.join(self._records))
        self._chunk_index += 1
        self._lines = []
        self._records = []
        return chunk

    # -- header --------------------------------------------------------------------------------

    def _read_header(self, lines: list[str]) -> list[str]:
        """Find the dialect and the header; returns the lines after it (the header stays
        unknown while only blank lines have come)."""
        skipped = 0
        for line in lines:
            bare = line.strip()
            hint = re.fullmatch(r'"?sep=(.)"?[,;]*', bare)
            if hint is not None:
                # Excel's hint line names the delimiter: `sep=;`.
                self._hinted = hint.group(1)
            elif bare:
                break
            skipped += 1
        else:
            self._line_no += skipped
            return []
        header_line = self._line_no + skipped + 1
        line = lines[skipped]
        delimiter = self._hinted or self._sniff(line)
        try:
            columns = next(csv.reader([line], delimiter=delimiter))
        except csv.Error as exc:
            raise CsvRefused(
                422, f"line {header_line:,} (the header) is not valid CSV: {exc}"
            ) from exc
        names = [c.strip() for c in columns]
        while names and not names[-1]:
            names.pop()  # trailing empty cells
        names = [n or f"column_{i + 1}" for i, n in enumerate(names)]
        if len(names) > MAX_COLUMNS:
            raise CsvRefused(422, f"the header has {len(names):,} columns; at most {MAX_COLUMNS}")
        seen: set[str] = set()
        for name in names:
            if name.casefold() in seen:
                raise CsvRefused(422, f"the header names the column '{name}' twice")
            seen.add(name.casefold())
        self.header = Header(tuple(names), self._phone_index(names, delimiter), delimiter)
        self._line_no = header_line
        return lines[skipped + 1 :]

    def _sniff(self, line: str) -> str:
        """The delimiter that makes a phone column of the header, else the most frequent one."""
        best, best_count = ",", 0
        for delimiter in DELIMITERS:
            try:
                names = next(csv.reader([line], delimiter=delimiter))
            except csv.Error:
                continue
            if self._find_phone([n.strip() for n in names]) is not None:
                return delimiter
            if len(names) - 1 > best_count:
                best, best_count = delimiter, len(names) - 1
        return best

    def _find_phone(self, names: list[str]) -> int | None:
        if self._phone_column is not None:
            wanted = self._phone_column.strip().casefold()
            matches = [i for i, n in enumerate(names) if n.casefold() == wanted]
        else:
            matches = [i for i, n in enumerate(names) if normalize_header_name(n) in PHONE_ALIASES]
            exact = [i for i in matches if normalize_header_name(names[i]) == "phone"]
            matches = exact or matches
        return matches[0] if matches else None

    def _phone_index(self, names: list[str], delimiter: str) -> int:
        found = self._find_phone(names)
        if found is not None:
            return found
        shown = ", ".join(f"'{n}'" for n in names[:20])
        which = (
            f"a column named '{self._phone_column}'"
            if self._phone_column is not None
            else "a 'phone' column"
        )
        delimiter_name = {"\t": "tab"}.get(delimiter, f"'{delimiter}'")
        raise CsvRefused(
            422,
            f"the header row has no phone column: {which} is needed (found {shown},"
            f" separated by {delimiter_name})",
        )
