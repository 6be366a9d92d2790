"""The streaming CSV intake on its own: dialects spreadsheets write, files cut anywhere, and
files it must refuse as a whole (with the status and a reason a person can act on)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longtasks.audiences.csv_intake import (
    Chunk,
    CsvIntake,
    CsvRefused,
    Header,
    split_records,
)


def run(
    data: bytes,
    *,
    pieces: int | list[int] = 1,
    chunk_rows: int = 1000,
    max_rows: int = 1_000_000,
    max_bytes: int = 1 << 30,
    **options: object,
) -> tuple[Header, list[int], list[list[str]], list[Chunk]]:
    """Feed `data` cut into pieces (a count, or the cut positions), as a body arrives."""
    intake = CsvIntake(
        chunk_rows=chunk_rows,
        max_rows=max_rows,
        max_bytes=max_bytes,
        **options,  # type: ignore[arg-type]
    )
    if isinstance(pieces, int):
        size = max(1, -(-len(data) // pieces))
        cuts = list(range(size, len(data), size))
    else:
        cuts = sorted(c for c in pieces if 0 < c < len(data))
    chunks: list[Chunk] = []
    start = 0
    for cut in [*cuts, len(data)]:
        chunks += intake.feed(data[start:cut])
        start = cut
    chunks += intake.close()
    assert intake.header is not None
    lines = [n for c in chunks for n in c.lines]
    rows = [r for c in chunks for r in split_records(c.records)]
    assert intake.rows == len(rows)
    return intake.header, lines, rows, chunks


def refused(data: bytes, **options: object) -> CsvRefused:
    with pytest.raises(CsvRefused) as caught:
        run(data, **options)  # type: ignore[arg-type]
    return caught.value


def test_plain_comma_file_with_crlf_and_bom() -> None:
    data = "\ufeffPhone,Name,City\r\n052-3000001,Dana,Haifa\r\n052-3000002,Yossi,Eilat\r\n"
    header, lines, rows, _ = run(data.encode())
    assert header == Header(("Phone", "Name", "City"), 0, ",")
    assert header.variables == ("Name", "City")
    assert lines == [2, 3]
    assert rows == [["052-3000001", "Dana", "Haifa"], ["052-3000002", "Yossi", "Eilat"]]


def test_excel_semicolons_with_its_sep_hint_and_hebrew() -> None:
    data = "sep=;\r\nשם;טלפון;עיר\r\nדנה כהן;052-3000001;תל אביב\r\n"
    header, lines, rows, _ = run(data.encode("utf-8-sig"))
    assert header.delimiter == ";"
    assert header.columns == ("שם", "טלפון", "עיר")
    assert header.phone_index == 1
    assert lines == [3]
    assert rows == [["דנה כהן", "052-3000001", "תל אביב"]]


def test_semicolons_are_found_without_a_hint() -> None:
    header, _, rows, _ = run(b"name;phone\nDana;+972523000001\n")
    assert header.delimiter == ";"
    assert rows == [["Dana", "+972523000001"]]


def test_tabs() -> None:
    header, _, rows, _ = run(b"phone\tname\n0523000001\tDana Levi\n")
    assert header.delimiter == "\t"
    assert rows == [["0523000001", "Dana Levi"]]


def test_quoted_fields_with_commas_quotes_and_line_breaks_keep_their_first_line() -> None:
    data = (
        b"phone,name,note\n"
        b'052-3000001,"Levi, Dana","said ""hi"""\n'
        b'052-3000002,Yossi,"two\nlines"\n'
        b"052-3000003,Noa,plain\n"
    )
    _, lines, rows, _ = run(data)
    assert rows == [
        ["052-3000001", "Levi, Dana", 'said "hi"'],
        ["052-3000002", "Yossi", "two\nlines"],
        ["052-3000003", "Noa", "plain"],
    ]
    # The line each record starts on, as a text editor numbers them (the header is line 1).
    assert lines == [2, 3, 5]


def test_blank_lines_and_rows_of_empty_cells_are_not_rows() -> None:
    data = b"\n\nphone,name\n\n052-3000001,Dana\n,,\n , \n052-3000002,Yossi\n\n"
    _, lines, rows, _ = run(data)
    assert rows == [["052-3000001", "Dana"], ["052-3000002", "Yossi"]]
    assert lines == [5, 8]


def test_the_phone_column_by_an_alias_or_by_name() -> None:
    header, _, _, _ = run(b"Name,Mobile Number\nDana,0523000001\n")
    assert header.phone_index == 1
    header, _, _, _ = run(b"home,cell\n1,2\n", phone_column="HOME")
    assert header.phone_index == 0
    # Several candidates: a column named exactly "phone" wins.
    header, _, _, _ = run(b"mobile,phone\n1,2\n")
    assert header.phone_index == 1


def test_empty_header_names_get_a_name_and_trailing_empty_ones_go() -> None:
    header, _, rows, _ = run(b"phone,,city,,\n1,x,y\n")
    assert header.columns == ("phone", "column_2", "city")
    assert rows == [["1", "x", "y"]]


def test_chunks_hold_chunk_rows_records_in_order() -> None:
    body = "phone\n" + "".join(f"05230{i:05d}\n" for i in range(2500))
    _, lines, rows, chunks = run(body.encode(), chunk_rows=1000, pieces=37)
    assert [c.index for c in chunks] == [0, 1, 2]
    assert [c.size for c in chunks] == [1000, 1000, 500]
    assert rows == [[f"05230{i:05d}"] for i in range(2500)]
    assert lines == list(range(2, 2502))


csv_fields = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00\x1e\x1f\r"
    ).filter(lambda c: c >= " " or c in "\t\n\x0b\x0c"),
    max_size=12,
)


@settings(max_examples=500, deadline=None)
@given(
    rows=st.lists(st.lists(csv_fields, min_size=2, max_size=2), min_size=1, max_size=40),
    delimiter=st.sampled_from([",", ";", "\t"]),
    cuts=st.lists(st.integers(min_value=1, max_value=4000), max_size=12),
    crlf=st.booleans(),
    quote_all=st.booleans(),
)
def test_any_cut_of_a_file_reads_like_the_csv_module(
    rows: list[list[str]], delimiter: str, cuts: list[int], crlf: bool, quote_all: bool
) -> None:
    """Whatever the network cuts a body into, the records are what csv.reader reads whole."""
    # Rows the intake drops (blank ones) and numbers made distinct so every row stays a row.
    rows = [[f"05230{i:05d}", *r[1:]] for i, r in enumerate(rows)]
    out = io.StringIO()
    writer = csv.writer(
        out,
        delimiter=delimiter,
        lineterminator="\r\n" if crlf else "\n",
        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
    )
    writer.writerow(["phone", "note"])
    writer.writerows(rows)
    data = out.getvalue().encode()
    expected = list(csv.reader(io.StringIO(out.getvalue(), newline=""), delimiter=delimiter))[1:]
    header, lines, got, _ = run(data, pieces=cuts, chunk_rows=7)
    assert header.columns == ("phone", "note")
    assert got == expected
    assert lines == sorted(lines) and lines[0] == 2


# -- refused files: status and reason -----------------------------------------------------------


def test_empty_file() -> None:
    for data in (b"", b"\n\n", b"\xef\xbb\xbf"):
        err = refused(data)
        assert err.status == 422 and "empty" in err.reason


def test_header_without_rows() -> None:
    err = refused(b"phone,name\n\n,\n")
    assert err.status == 422 and "no rows" in err.reason


def test_no_phone_column_names_what_it_found() -> None:
    err = refused(b"name,city\nDana,Haifa\n")
    assert err.status == 422
    assert "no phone column" in err.reason and "'name', 'city'" in err.reason


def test_a_named_phone_column_that_is_not_there() -> None:
    err = refused(b"phone,name\n1,x\n", phone_column="cell")
    assert err.status == 422 and "'cell'" in err.reason


def test_duplicate_column_names() -> None:
    err = refused(b"phone,name,Name\n1,x,y\n")
    assert err.status == 422 and "twice" in err.reason


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)), "Excel workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "old Excel"),
        ("phone,name\n1,x\n".encode("utf-16"), "UTF-16"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"phone,name\n052,\x00\x01\x02\n", "binary"),
        (bytes(range(256)) * 16, "binary"),
    ],
)
def test_binary_files(data: bytes, says: str) -> None:
    err = refused(data)
    assert err.status == 415 and says in err.reason


def test_windows_1255_hebrew_is_not_utf8_and_the_line_is_named() -> None:
    data = "phone,name\n052-3000001,Dana\n052-3000002,דנה\n".encode("cp1255")
    err = refused(data, pieces=3)
    assert err.status == 415 and "not UTF-8" in err.reason and "line 3" in err.reason


def test_a_10_mb_single_line() -> None:
    err = refused(b"phone,name\n" + b"x" * (10 * 1024 * 1024), pieces=160)
    assert err.status == 422 and "line 2 is longer than" in err.reason
    err = refused(b"a" * (10 * 1024 * 1024) + b"\n", pieces=160)
    assert err.status == 422 and "line 1 is longer than" in err.reason


def test_an_unclosed_quote() -> None:
    err = refused(b'phone,name\n052-3000001,"Dana\n052-3000002,Yossi\n')
    assert err.status == 422 and "line 2" in err.reason and "never closed" in err.reason
    long_tail = b'phone,name\n052,"' + b"x,y,z\n" * 100_000
    err = refused(long_tail, pieces=50)
    assert err.status == 422 and "line 2" in err.reason


def test_too_many_rows_and_too_many_bytes() -> None:
    body = b"phone\n" + b"0523000001\n" * 11
    err = refused(body, max_rows=10, pieces=4)
    assert err.status == 413 and "more than 10 rows" in err.reason
    err = refused(body, max_bytes=100, pieces=4)
    assert err.status == 413 and "larger than 100 bytes" in err.reason
    _header, _, rows, _ = run(body, max_rows=11, max_bytes=len(body))
    assert len(rows) == 11
