"""Uploading a customer list end to end: API, import task on the worker, members and errors."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy import text

from tests.audiences.helpers import (
    csv_bytes,
    import_ready,
    kept_for,
    members,
    upload,
    upload_ok,
    wait_audience,
)
from tests.conftest import (
    Stack,
    israeli_numbers,
    record_history,
    wait_for_status,
    wait_until,
)
from tests.security.conftest import dedicated_api


async def test_an_excel_hebrew_list_imports_with_its_errors_kept(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """Excel's semicolons with its BOM and CRLF, Hebrew, quoted fields, local and
    international numbers, duplicates in both forms, invalid and empty numbers."""
    business_id = await new_business()
    n1, n2, n3 = israeli_numbers(3)
    rows = [
        [n1, "דנה", "תל אביב"],  # line 2
        ["+972" + n2[1:].replace("-", ""), "Levi; Yossi", "Haifa"],  # line 3 (quoted)
        ["12", "Bad", "Nowhere"],  # line 4: not a number
        [n3, 'Noa "N"', "Eilat"],  # line 5
        ["", "No phone", "x"],  # line 6
        ["+972 " + n1[1:], "Dana again", "Jaffa"],  # line 7: duplicate of line 2
        [n2, "Yossi again", ""],  # line 8: duplicate of line 3
    ]
    data = csv_bytes(rows, ("טלפון", "שם", "עיר"), delimiter=";", bom=True, newline="\r\n")
    async with stack.http(business_id) as http:
        started = await upload_ok(http, data, params={"name": "לקוחות"})
        audience = started["audience"]
        assert started["task"]["task_type"] == "audience_import"
        assert audience["name"] == "לקוחות"
        assert audience["row_count"] == 7
        assert audience["columns"] == ["טלפון", "שם", "עיר"]
        assert audience["phone_column"] == "טלפון"
        assert audience["variables"] == ["שם", "עיר"]
        assert audience["valid_count"] is None  # not known until the import is done

        ready = await wait_audience(http, audience["id"], {"ready", "failed"})
        assert ready["status"] == "ready", ready
        assert (ready["valid_count"], ready["invalid_count"], ready["duplicate_count"]) == (
            3,
            2,
            2,
        )
        assert ready["suppressed_count"] == 0
        assert ready["progress_pct"] == 100.0

        task = await wait_for_status(http, started["task"]["id"], {"completed"})
        assert (task["total_items"], task["success_count"], task["failed_count"]) == (7, 5, 2)
        assert task["skipped_count"] == 2  # the duplicates: looked at, left out

        response = await http.get(f"/api/audiences/{audience['id']}/errors")
        assert response.status_code == 200
        errors = response.json()
        assert errors["next_cursor"] is None
        assert [(e["line"], e["reason"]) for e in errors["items"]] == [
            (4, "invalid_phone"),
            (6, "missing_phone"),
            (7, "duplicate"),
            (8, "duplicate"),
        ]
        assert errors["items"][0]["phone"] == "12"
        assert errors["items"][0]["values"] == {"שם": "Bad", "עיר": "Nowhere"}
        assert errors["items"][2]["duplicate_of"] == 2
        assert errors["items"][3]["detail"] == "the number is already on line 3"

        page = await http.get(f"/api/audiences/{audience['id']}/errors", params={"limit": 3})
        second = await http.get(
            f"/api/audiences/{audience['id']}/errors",
            params={"limit": 3, "cursor": page.json()["next_cursor"]},
        )
        assert [e["line"] for e in page.json()["items"] + second.json()["items"]] == [4, 6, 7, 8]
        dups = await http.get(
            f"/api/audiences/{audience['id']}/errors", params={"reason": "duplicate"}
        )
        assert [e["line"] for e in dups.json()["items"]] == [7, 8]

        exported = await http.get(
            f"/api/audiences/{audience['id']}/errors", params={"format": "csv"}
        )
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        table = list(csv.reader(io.StringIO(exported.text)))
        assert table[0] == ["line", "reason", "detail", "duplicate_of", "טלפון", "שם", "עיר"]
        assert table[1][:2] == ["4", "invalid_phone"]
        assert table[1][4:] == ["12", "Bad", "Nowhere"]
        assert len(table) == 5

    # Members: first-seen wins, numbered in file order, variables trimmed and kept.
    assert await members(stack.engine, audience["id"]) == [
        (1, 2, "+972523000001", ["דנה", "תל אביב"]),
        (2, 3, "+972523000002", ["Levi; Yossi", "Haifa"]),
        (3, 5, "+972523000003", ['Noa "N"', "Eilat"]),
    ]
    assert (await kept_for(stack.engine, business_id))["chunks"] == 0  # staging is gone
    await record_history(stack.client, started["task"]["workflow_id"], "audience_import-ready")


async def test_a_form_upload_from_the_web_page(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    data = csv_bytes([[n, f"name {i}"] for i, n in enumerate(israeli_numbers(30))])
    async with stack.http(business_id) as http:
        response = await http.post(
            "/api/audiences",
            data={"phone_column": "phone", "name": "From the page"},
            files={"file": ("customers.csv", data, "application/vnd.ms-excel")},
        )
        assert response.status_code == 202, response.text
        audience = response.json()["audience"]
        assert audience["filename"] == "customers.csv"
        assert audience["name"] == "From the page"
        ready = await wait_audience(http, audience["id"], {"ready", "failed"})
        assert ready["valid_count"] == 30

        # Named after the file when no name is given.
        response = await http.post(
            "/api/audiences", files={"file": ("VIP list.CSV", data, "text/csv")}
        )
        assert response.status_code == 202, response.text
        assert response.json()["audience"]["name"] == "VIP list"


async def test_many_pages_import_in_parallel_and_every_row_once(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """Pages of 50 rows (the stack's page size): duplicates across pages still resolve to
    the first line, in any order the pages finish."""
    business_id = await new_business()
    numbers = israeli_numbers(400)
    # Every tenth row repeats a number from ~200 rows earlier: in another page.
    rows = [[n, str(i)] for i, n in enumerate(numbers)]
    rows += [[numbers[i], f"again {i}"] for i in range(0, 400, 10)]
    async with stack.http(business_id) as http:
        ready = await import_ready(http, csv_bytes(rows))
        assert ready["status"] == "ready", ready
        assert ready["row_count"] == 440
        assert (ready["valid_count"], ready["duplicate_count"]) == (400, 40)
    got = await members(stack.engine, ready["id"])
    assert [m[0] for m in got] == list(range(1, 401))
    assert [m[1] for m in got] == list(range(2, 402))
    assert [m[3] for m in got] == [[str(i)] for i in range(400)]


async def test_a_list_with_no_valid_number_fails_with_the_reason(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.http(business_id) as http:
        done = await import_ready(http, csv_bytes([["1", "a"], ["abc", "b"]]))
        assert done["status"] == "failed"
        assert done["failure_reason"] == (
            "none of the 2 rows has a phone number that can be messaged"
        )
        assert done["invalid_count"] == 2
        errors = (await http.get(f"/api/audiences/{done['id']}/errors")).json()["items"]
        assert [e["reason"] for e in errors] == ["invalid_phone", "invalid_phone"]


async def test_listing_reading_and_deleting_are_tenant_scoped(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    owner, stranger = await new_business(), await new_business()
    data = csv_bytes([[n, "x"] for n in israeli_numbers(5)])
    async with stack.http(owner) as http:
        first = await import_ready(http, data, params={"name": "first"})
        second = await import_ready(http, data, params={"name": "second"})
        listed = (await http.get("/api/audiences", params={"limit": 1})).json()
        assert [a["name"] for a in listed["items"]] == ["second"]
        more = (
            await http.get("/api/audiences", params={"limit": 1, "cursor": listed["next_cursor"]})
        ).json()
        assert [a["name"] for a in more["items"]] == ["first"]
        assert more["next_cursor"] is None

    async with stack.http(stranger) as http:
        assert (await http.get("/api/audiences")).json()["items"] == []
        for path in (f"/api/audiences/{first['id']}", f"/api/audiences/{first['id']}/errors"):
            assert (await http.get(path)).status_code == 404
        assert (await http.delete(f"/api/audiences/{first['id']}")).status_code == 404

    async with stack.http(owner, role="operator") as http:
        assert (await http.delete(f"/api/audiences/{first['id']}")).status_code == 403
    async with stack.http(owner, role="viewer") as http:
        assert (await upload(http, data)).status_code == 403
    async with stack.http(owner) as http:
        assert (await http.delete(f"/api/audiences/{first['id']}")).status_code == 204
        assert (await http.get(f"/api/audiences/{first['id']}")).status_code == 404
        assert (await http.get(f"/api/audiences/{second['id']}")).status_code == 200
    assert await members(stack.engine, first["id"]) == []
    async with stack.engine.connect() as conn:
        left = await conn.execute(
            text("SELECT count(*) FROM audience_errors WHERE audience_id = :a"), {"a": first["id"]}
        )
        assert left.scalar() == 0


@pytest.mark.parametrize("how", ["rest", "temporal"])
async def test_a_cancelled_import_leaves_the_audience_failed_and_no_staging(
    how: str, stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """Cancelled through the API or Temporal's own cancel (the Web UI's button): the task ends
    `cancelled`, the audience `failed` with the reason, its staged chunks are dropped; an
    audience cannot be deleted while it imports."""
    business_id = await new_business()
    rows = [[n, "x"] for n in israeli_numbers(20_000)]
    async with (
        dedicated_api(stack, audience_import_page_size=50) as base,
        httpx.AsyncClient(
            base_url=base,
            headers={"Authorization": f"Bearer {stack.token(business_id)}"},
            timeout=60,
        ) as http,
    ):
        started = await upload_ok(http, csv_bytes(rows))
        audience_id, task_id = started["audience"]["id"], started["task"]["id"]

        async def some_rows_done() -> bool:
            task = (await http.get(f"/api/long_tasks/{task_id}")).json()
            return bool(task["processed_items"] >= 500)

        await wait_until(some_rows_done, timeout_s=120, what="500 rows imported")
        busy = await http.delete(f"/api/audiences/{audience_id}")
        assert busy.status_code == 409
        assert f"/api/long_tasks/{task_id}/cancel" in busy.json()["detail"]
        if how == "rest":
            response = await http.post(f"/api/long_tasks/{task_id}/cancel")
            assert response.status_code == 202
        else:
            await stack.client.get_workflow_handle(started["task"]["workflow_id"]).cancel()
        task = await wait_for_status(http, task_id, {"cancelled", "completed", "failed"})
        audience = await wait_audience(http, audience_id, {"ready", "failed"})
    assert task["status"] == "cancelled", task
    assert 0 < task["processed_items"] < 20_000
    assert audience["status"] == "failed"
    assert audience["failure_reason"] == "the import was cancelled"
    assert await kept_for(stack.engine, business_id) == {"audiences": 1, "chunks": 0, "tasks": 1}
    assert await members(stack.engine, audience_id) == []
    await record_history(
        stack.client, started["task"]["workflow_id"], f"audience_import-cancelled-{how}"
    )
