"""Files that are not a customer list, or too large: a clear 4xx, and nothing kept (no
audience, no staged chunk, no import task), whatever arrived before the refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from tests.audiences.helpers import csv_bytes, kept_for, upload
from tests.conftest import FaultReport, HostileRow, Stack, israeli_numbers
from tests.security.conftest import HostileTally, dedicated_api

NOTHING = {"audiences": 0, "chunks": 0, "tasks": 0}
GOOD_ROWS = b"".join(f"{n},name\n".encode() for n in israeli_numbers(20_000))

HOSTILE: list[tuple[str, bytes, str, int, str]] = [
    ("empty file", b"", "text/csv", 422, "empty"),
    ("only a BOM and blank lines", b"\xef\xbb\xbf\r\n\r\n", "text/csv", 422, "empty"),
    ("header, no rows", b"phone,name\n", "text/csv", 422, "no rows"),
    ("no phone column", b"name,city\nDana,Haifa\n" * 3, "text/csv", 422, "no phone column"),
    ("binary (a PNG)", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64, "text/csv", 415, "binary"),
    ("an xlsx workbook", b"PK\x03\x04" + bytes(4096), "text/csv", 415, "Excel workbook"),
    ("UTF-16", "phone,name\n0523000001,x\n".encode("utf-16"), "text/csv", 415, "UTF-16"),
    (
        "windows-1255 Hebrew",
        "phone,name\n0523000001,דנה\n".encode("cp1255"),
        "text/csv",
        415,
        "not UTF-8",
    ),
    # 10 MB on one line, after 20,000 good rows already streamed into staging.
    (
        "a 10 MB single line",
        b"phone,name\n" + GOOD_ROWS + b"x" * (10 * 1024 * 1024),
        "text/csv",
        422,
        "is longer than",
    ),
    (
        "an unclosed quote",
        b'phone,name\n0523000001,"Dana\n' + b"0523000002,x\n" * 200_000,
        "text/csv",
        422,
        "closing quote",
    ),
    ("a JSON body", b'{"recipients": ["0523000001"]}', "application/json", 415, "text/csv"),
]


@pytest.mark.parametrize(
    ("data", "content_type", "status", "says"),
    [h[1:] for h in HOSTILE],
    ids=[h[0] for h in HOSTILE],
)
async def test_a_hostile_file_is_refused_and_nothing_kept(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    data: bytes,
    content_type: str,
    status: int,
    says: str,
) -> None:
    business_id = await new_business()
    async with stack.http(business_id) as http:
        response = await upload(http, data, content_type=content_type)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]
    assert await kept_for(stack.engine, business_id) == NOTHING


async def test_every_hostile_file_in_the_report(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    """The same files, sent as a form too, counted for the fault report."""
    business_id = await new_business()
    async with stack.http(business_id) as http:
        tally = HostileTally(http)
        for _, data, content_type, status, _ in HOSTILE:
            raw = await tally.send(
                "POST", "/api/audiences", content=data, headers={"Content-Type": content_type}
            )
            assert raw.status_code == status
            if content_type == "text/csv":
                form = await tally.send(
                    "POST", "/api/audiences", files={"file": ("list.csv", data, "text/csv")}
                )
                assert form.status_code == status, form.text
        no_file = await tally.send(
            "POST", "/api/audiences", data={"name": "x"}, files={"other": ("a.csv", b"phone\n1\n")}
        )
        assert no_file.status_code == 422
        assert "no 'file' field" in no_file.json()["detail"]
    assert tally.server_errors == []
    assert await kept_for(stack.engine, business_id) == NOTHING
    fault_report.add_hostile(
        HostileRow(
            "hostile CSV uploads (binary, workbook, UTF-16, cp1255, empty, no phone column,"
            " 10 MB line, unclosed quote), raw and as a form",
            tally.sent,
            len(tally.server_errors),
            "4xx with the reason, nothing kept",
        )
    )


async def test_over_the_row_or_byte_cap_is_413_and_nothing_kept(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    data = csv_bytes([[n, "x"] for n in israeli_numbers(1001)])
    async with (
        dedicated_api(stack, max_audience_rows=1000, max_audience_bytes=len(data) + 10) as base,
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {stack.token(business_id)}"}
        ) as http,
    ):
        response = await upload(http, data)
        assert response.status_code == 413
        assert "more than 1,000 rows (MAX_AUDIENCE_ROWS)" in response.json()["detail"]

        async def chunked(body: bytes) -> AsyncIterator[bytes]:
            for i in range(0, len(body), 4096):
                yield body[i : i + 4096]

        bigger = data + csv_bytes([["0523999999", "x" * 100]] * 5)[len("phone,name\n") :]
        for body in (bigger, chunked(bigger)):  # by Content-Length, and streamed (chunked)
            response = await http.post(
                "/api/audiences", content=body, headers={"Content-Type": "text/csv"}
            )
            assert response.status_code == 413, response.text
    assert await kept_for(stack.engine, business_id) == NOTHING
