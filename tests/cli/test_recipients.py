"""Recipient files: CSV or plain lists, headers in English or Hebrew, BOMs, Windows-1255, stdin."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cli.errors import CliError
from cli.recipients import read_recipients, recipients_from_text


def test_csv_with_a_phone_column() -> None:
    text = 'name,phone,city\nDana,052-3000001,Haifa\n\nYossi,"052-3000002",TLV\n'
    assert recipients_from_text(text) == ["052-3000001", "052-3000002"]


def test_hebrew_header_semicolons_and_bom() -> None:
    text = "\ufeffשם;טלפון\r\nדנה;052-3000001\r\nיוסי;+972 52 300 0002\r\n"
    assert recipients_from_text(text) == ["052-3000001", "+972 52 300 0002"]


def test_first_column_when_no_phone_header() -> None:
    assert recipients_from_text("number,name\n0523000001,a\n0523000002,b\n") == [
        "0523000001",
        "0523000002",
    ]
    # No header at all: the first row is data.
    assert recipients_from_text("0523000001,a\n0523000002,b\n") == ["0523000001", "0523000002"]


def test_plain_list_one_per_line() -> None:
    text = "052-3000001\n 052 300 0002 \n\n052-3000003\n"
    assert recipients_from_text(text) == ["052-3000001", "052 300 0002", "052-3000003"]


def test_tabs_and_short_rows() -> None:
    text = "id\tphone\n1\t052-3000001\n2\n3\t052-3000003\n"
    assert recipients_from_text(text) == ["052-3000001", "052-3000003"]


def test_empty_file_has_no_recipients(tmp_path: Path) -> None:
    assert recipients_from_text("") == []
    assert recipients_from_text("phone\n\n") == []
    path = tmp_path / "empty.csv"
    path.write_text("phone\n")
    with pytest.raises(CliError, match="no phone numbers"):
        read_recipients(str(path))


def test_windows_hebrew_encoding_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes("טלפון\n052-3000001\n".encode("cp1255"))
    assert read_recipients(str(path)) == ["052-3000001"]
    assert read_recipients("-", io.StringIO("052-3000009\n")) == ["052-3000009"]
    with pytest.raises(CliError, match="cannot read"):
        read_recipients(str(tmp_path / "missing.csv"))
    huge = tmp_path / "huge.csv"
    huge.write_text('"' + "9" * 200_000 + '"\n')
    with pytest.raises(CliError, match="not a readable CSV"):
        read_recipients(str(huge))
