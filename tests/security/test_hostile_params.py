"""SQL injection, oversized and malformed values in every query, path and header parameter:
never a 5xx, always a proper 4xx (or a correct, tenant-scoped 200), nothing about the database
leaks into a response, and the data is intact afterwards. Page sizes over 500 are 422, garbage
cursors 400."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import (
    FaultReport,
    HostileRow,
    Stack,
    israeli_numbers,
    ledger_counts,
    start_broadcast,
    wait_for_status,
)
from tests.security.conftest import HostileTally

INT64_MAX = 2**63 - 1

SQL_INJECTION = [
    "' OR '1'='1",
    "' OR 1=1 --",
    '" OR ""="',
    "1; DROP TABLE long_running_tasks; --",
    "1' UNION SELECT id, business_id FROM long_running_tasks --",
    "'; UPDATE long_running_tasks SET business_id = 1; --",
    "1 AND pg_sleep(5)",
    "'||(SELECT pg_sleep(5))||'",
    "$$; DELETE FROM task_items; $$",
    "%",
    "_",
    "\\",
    "'",
    "broadcast' --",
    "completed' OR status IS NOT NULL --",
]
MALFORMED = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "%00",
    "\ufeff",
    "\u202e",
    "²",
    "١٢٣",
    "１２",
    "𝟙",
    "-1",
    "0",
    "1e3",
    "0x10",
    "1.5",
    "NaN",
    "Infinity",
    str(INT64_MAX),
    str(INT64_MAX + 1),
    "9" * 40,
    "-" + "9" * 40,
    "null",
    "[]",
    "{}",
    "true",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "${jndi:ldap://x/a}",
]
OVERSIZED = ["x" * 4096, "'" * 4096, "9" * 8000, "é" * 3000]
VALUES = SQL_INJECTION + MALFORMED + OVERSIZED
# Database internals that must never reach a client (unless the client sent them itself).
LEAKS = [
    "traceback",
    'file "',
    "psycopg",
    "sqlalchemy",
    "asyncpg",
    "syntax error",
    "sqlstate",
    "long_running_tasks",
    "task_items",
    "broadcast_recipients",
    "postgresql://",
    "numericvalueoutofrange",
    "invalid input syntax",
]


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


CURSOR_GARBAGE = [
    "!!",
    "%%%",
    "....",
    "zzzz",
    "_-_-",
    "////",
    "\x00",
    "a" * 200,
    _b64("abc"),
    _b64("-1"),
    _b64("1.5"),
    _b64(" 1"),
    _b64("²"),
    _b64("١٢"),
    _b64("1\x00"),
    _b64(str(INT64_MAX + 1)),
    _b64("9" * 100),
    _b64("' OR 1=1 --"),
    _b64("1:\x00"),
    _b64("x:y"),
    _b64(":"),
    _b64("²:1"),
    _b64("9" * 100 + ":k"),
    base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
]


def assert_no_leak(response: httpx.Response, sent: str) -> None:
    body = response.text.lower()
    for word in LEAKS:
        assert word not in body or word in sent.lower(), (word, response.status_code, body[:500])


async def _snapshot(stack: Stack, http: httpx.AsyncClient, task_ids: list[int]) -> Any:
    listing = (await http.get("/api/long_tasks", params={"limit": 500})).json()
    tasks = sorted(
        (t["id"], t["status"], t["total_items"], t["success_count"], t["business_id"])
        for t in listing["items"]
    )
    ledgers = [await ledger_counts(stack.engine, task_id) for task_id in task_ids]
    return tasks, ledgers


@pytest.fixture
async def victim(stack: Stack, new_business: Callable[[], Awaitable[int]]) -> tuple[int, list[int]]:
    """A business with a completed and a scheduled broadcast."""
    business_id = await new_business()
    async with stack.http(business_id, "operator") as http:
        done = await start_broadcast(http, israeli_numbers(3, start=7100))
        await wait_for_status(http, done["task"]["id"], {"completed"})
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
        scheduled = await start_broadcast(http, israeli_numbers(2, start=7200), start_at=later)
    return business_id, [int(done["task"]["id"]), int(scheduled["task"]["id"])]


async def test_hostile_query_path_and_header_values(
    stack: Stack,
    victim: tuple[int, list[int]],
    new_business: Callable[[], Awaitable[int]],
    fault_report: FaultReport,
) -> None:
    victim_id, task_ids = victim
    done_id, scheduled_id = task_ids
    intruder = await new_business()
    async with stack.http(victim_id, "admin") as owner_http:
        before = await _snapshot(stack, owner_http, task_ids)

    for who, business_id in (("owner", victim_id), ("intruder", intruder)):
        async with stack.http(business_id, "operator") as http:
            tally = HostileTally(http)
            for value in VALUES:
                # Filters and paging of the task list.
                for name in ("task_type", "status", "limit", "cursor"):
                    response = await tally.send("GET", "/api/long_tasks", params={name: value})
                    assert response.status_code in (400, 422), (
                        who,
                        name,
                        value[:80],
                        response.text[:300],
                    )
                    assert_no_leak(response, value)
                # Filters and paging of one task's items and its CSV export.
                for path in (
                    f"/api/long_tasks/{done_id}/items",
                    f"/api/long_tasks/{done_id}/items.csv",
                ):
                    for name in ("status", "limit", "cursor"):
                        if path.endswith(".csv") and name != "status":
                            continue
                        response = await tally.send("GET", path, params={name: value})
                        expected = (400, 422) if who == "owner" else (400, 404, 422)
                        assert response.status_code in expected, (
                            who,
                            path,
                            name,
                            value[:80],
                            response.text[:300],
                        )
                        assert_no_leak(response, value)
                # The task id in every task route.
                for method, template in (
                    ("GET", "/api/long_tasks/{}"),
                    ("DELETE", "/api/long_tasks/{}"),
                    ("POST", "/api/long_tasks/{}/cancel"),
                    ("GET", "/api/long_tasks/{}/items"),
                    ("GET", "/api/long_tasks/{}/items.csv"),
                    ("GET", "/api/long_tasks/{}/events"),
                ):
                    response = await tally.send(method, template.format(_path(value)))
                    assert 400 <= response.status_code < 500, (
                        method,
                        template,
                        value[:80],
                        response.text[:300],
                    )
                    assert_no_leak(response, value)
                # A bearer token made of the hostile value, and as `access_token`.
                response = await tally.send(
                    "GET",
                    "/api/long_tasks",
                    params={"access_token": value},
                    headers={"Authorization": ""},
                )
                assert response.status_code in (400, 401, 422), (value[:80], response.text[:300])
                # Last-Event-ID on a terminal task's stream (it answers and ends).
                if _header_safe(value):
                    response = await tally.send(
                        "GET", f"/api/long_tasks/{done_id}/events", headers={"Last-Event-ID": value}
                    )
                    assert response.status_code == (200 if who == "owner" else 404), value[:80]
            # A sound cancel body with a hostile reason: the scheduled task of the owner only.
            for value in SQL_INJECTION + ["\x00", "x" * 501]:
                response = await tally.send(
                    "POST", f"/api/long_tasks/{scheduled_id}/cancel", json={"reason": value}
                )
                if who == "intruder":  # the body is checked first; both say nothing
                    assert response.status_code in (404, 422), response.text[:300]
                assert response.status_code < 500, (value[:80], response.text[:300])
                assert_no_leak(response, value)
            fault_report.add_hostile(
                HostileRow(
                    scenario=f"SQL injection / oversized / malformed in every query, path and"
                    f" header parameter ({who})",
                    requests=tally.sent,
                    server_errors=len(tally.server_errors),
                    outcome="all 4xx, no database text in any answer"
                    if not tally.server_errors
                    else "FAILED",
                ),
            )
            assert not tally.server_errors, "\n".join(tally.server_errors[:20])

    # The data is intact: same tasks, same ledgers; the intruder saw none of it.
    async with stack.http(victim_id, "admin") as owner_http:
        after = await _snapshot(stack, owner_http, task_ids)
    before_tasks, before_ledgers = before
    after_tasks, after_ledgers = after
    assert [t[:3] for t in after_tasks if t[0] == done_id] == [
        t[:3] for t in before_tasks if t[0] == done_id
    ]
    assert after_ledgers[0] == before_ledgers[0] == {"succeeded": 3}
    assert {t[0] for t in after_tasks} == {t[0] for t in before_tasks} == set(task_ids)
    assert all(t[4] == victim_id for t in after_tasks)
    async with stack.http(intruder, "admin") as http:
        assert (await http.get("/api/long_tasks")).json()["items"] == []


def _path(value: str) -> str:
    """A path segment: '?', '#', '/' and the rest are escaped, so the value stays one segment."""
    return quote(value, safe="") or "%20"


def _header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable() and value == value.strip() and value != ""


async def test_page_size_limits_and_cursor_garbage(
    stack: Stack,
    victim: tuple[int, list[int]],
    fault_report: FaultReport,
) -> None:
    victim_id, task_ids = victim
    done_id = task_ids[0]
    async with stack.http(victim_id, "viewer") as http:
        tally = HostileTally(http)
        for path in ("/api/long_tasks", f"/api/long_tasks/{done_id}/items"):
            for limit in (501, 1000, 10**6, 10**30, 0, -1):
                response = await tally.send("GET", path, params={"limit": limit})
                assert response.status_code == 422, (path, limit, response.text)
                assert "limit" in response.text
            for limit in (1, 500):
                response = await tally.send("GET", path, params={"limit": limit})
                assert response.status_code == 200, (path, limit, response.text)
                assert len(response.json()["items"]) <= limit
            for garbage in CURSOR_GARBAGE:
                response = await tally.send("GET", path, params={"cursor": garbage})
                assert response.status_code == 400, (path, garbage, response.text)
                assert response.json() == {"detail": "invalid cursor"}
            response = await tally.send("GET", path, params={"cursor": "a" * 401})
            assert response.status_code == 422
        # A real cursor still works: page through the items one by one.
        seen: list[int] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = (await http.get(f"/api/long_tasks/{done_id}/items", params=params)).json()
            seen += [item["seq"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [1, 2, 3]
    fault_report.add_hostile(
        HostileRow(
            scenario="page sizes over 500 and garbage cursors",
            requests=tally.sent,
            server_errors=len(tally.server_errors),
            outcome="limit > 500 is 422, garbage cursors 400"
            if not tally.server_errors
            else "FAILED",
        )
    )
    assert not tally.server_errors, "\n".join(tally.server_errors)


# Bodies that cannot be stored or parsed: refused with a 4xx, nothing written.
UNSTORABLE_BODIES = [
    '{"name": "a\\u0000b", "message": {"text": "hi"}, "recipients": ["052-3456789"]}',
    '{"name": "x", "message": {"text": "\\u0000"}, "recipients": ["052-3456789"]}',
    '{"name": "x", "message": {"text": "hi"}, "recipients": ["052-345\\u00006789"]}',
    '{"name": "x", "message": {"template": {"name": "t\\u0000", "language": "he"}},'
    ' "recipients": ["052-3456789"]}',
    '{"name": "\\ud800", "message": {"text": "hi"}, "recipients": ["052-3456789"]}',
    '{"name": "x", "message": {"text": "\\udfff"}, "recipients": ["052-3456789"]}',
    '{"name": "x", "message": {"text": "hi"}, "recipients": ["\\ud83d"]}',
    "{",
    "[]",
    "null",
    '"x"',
    "1e999",
    '{"name": 1e999, "message": {"text": "hi"}, "recipients": ["052-3456789"]}',
    '{"name": "x", "message": {"text": "hi"}, "recipients": "052-3456789"}',
    "[" * 50_000 + "]" * 50_000,
    '{"a":' * 20_000 + "1" + "}" * 20_000,
    "\xff\xfe garbage",
]


async def test_hostile_broadcast_bodies(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "operator") as http:
        tally = HostileTally(http)
        for body in UNSTORABLE_BODIES:
            response = await tally.send(
                "POST",
                "/api/broadcasts",
                content=body.encode("utf-8", errors="surrogatepass"),
                headers={"Content-Type": "application/json"},
            )
            assert 400 <= response.status_code < 500, (body[:80], response.text[:300])
            assert_no_leak(response, body)
        assert (await http.get("/api/long_tasks")).json()["items"] == []

        # SQL in every text field is data: stored verbatim, sent nowhere, tables intact.
        started = []
        for value in SQL_INJECTION:
            response = await tally.send(
                "POST",
                "/api/broadcasts",
                json={
                    "name": value,
                    "message": {"text": value},
                    "recipients": [value, "052-3456789"],
                },
            )
            assert response.status_code == 202, (value, response.text[:300])
            started.append(response.json())
        for item in started:
            task = await wait_for_status(http, item["task"]["id"], {"completed"})
            assert (task["success_count"], task["failed_count"]) == (1, 1)
            assert item["recipients_invalid"] == 1
        listing = (await http.get("/api/long_tasks", params={"limit": 500})).json()["items"]
        assert sorted(t["id"] for t in listing) == sorted(s["task"]["id"] for s in started)
    fault_report.add_hostile(
        HostileRow(
            scenario="NUL bytes, lone surrogates, deep nesting, malformed JSON and SQL in"
            " broadcast bodies",
            requests=tally.sent,
            server_errors=len(tally.server_errors),
            outcome="unstorable bodies 4xx with nothing written; SQL stored as plain data"
            if not tally.server_errors
            else "FAILED",
        )
    )
    assert not tally.server_errors, "\n".join(tally.server_errors)


def _owned_by(node: object, business_id: int) -> bool:
    """Every `business_id` anywhere in a JSON answer is the caller's."""
    if isinstance(node, dict):
        if "business_id" in node and node["business_id"] != business_id:
            return False
        return all(_owned_by(v, business_id) for v in node.values())
    if isinstance(node, list):
        return all(_owned_by(v, business_id) for v in node)
    return True


async def test_every_parameter_in_the_spec_survives_hostile_values(
    stack: Stack, victim: tuple[int, list[int]], fault_report: FaultReport
) -> None:
    """A sweep generated from the OpenAPI route table, so parameters added later are covered:
    each query, path and header parameter of every /api operation gets every hostile value.
    Free-text filters may answer 200 (with the caller's data only); nothing may answer 5xx."""
    from api.app import create_app

    business_id, task_ids = victim
    spec = create_app(stack.settings).openapi()
    swept: set[str] = set()
    # An admin reaches every route (the audit log's too), so every parameter is parsed.
    async with stack.http(business_id, "admin") as http:
        tally = HostileTally(http)
        for path, operations in spec["paths"].items():
            if not path.startswith("/api/") or path == "/api/long_tasks/events":
                continue  # the business stream never ends; it takes no parameters
            for method, operation in operations.items():
                for param in operation.get("parameters", []):
                    where, name = param["in"], param["name"]
                    swept.add(f"{method.upper()} {path} {where}:{name}")
                    if where == "query" and name == "cursor" and "{" not in path:
                        for garbage in CURSOR_GARBAGE:
                            response = await tally.send(
                                method.upper(), path, params={name: garbage}
                            )
                            assert response.status_code == 400, (path, garbage, response.text)
                    for value in VALUES:
                        url = path
                        for other in re.findall(r"\{(\w+)\}", path):
                            fill = _path(value) if other == name else str(task_ids[0])
                            url = url.replace("{" + other + "}", fill)
                        kwargs: dict[str, Any] = {}
                        if where == "query":
                            kwargs["params"] = {name: value}
                        elif where == "header":
                            if not _header_safe(value):
                                continue
                            kwargs["headers"] = {name: value}
                        response = await tally.send(method.upper(), url, **kwargs)
                        assert response.status_code < 500, (method, path, name, value[:80])
                        assert_no_leak(response, value)
                        if response.headers.get("content-type", "").startswith("application/json"):
                            assert _owned_by(response.json(), business_id), (path, name)
    fault_report.add_hostile(
        HostileRow(
            scenario=f"every query/path/header parameter in the OpenAPI spec ({len(swept)})"
            f" × {len(VALUES)} hostile values",
            requests=tally.sent,
            server_errors=len(tally.server_errors),
            outcome="no 5xx, no database text, only the caller's data"
            if not tally.server_errors
            else "FAILED",
        )
    )
    assert len(swept) >= 15, swept
    assert not tally.server_errors, "\n".join(tally.server_errors[:20])
