"""No personal data in Temporal: the stored histories of real runs (every run of the chain,
fetched from the server) and the committed ones in tests/histories hold ids, cursors and counts
only: no phone number in any form, no message text, no broadcast name, no email address.

Payloads are base64 in a history's JSON, so every payload (inputs, results, signals, search
attributes, memo, summaries, failures) is decoded before searching.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import phonenumbers

from tests.conftest import (
    HISTORIES,
    FaultReport,
    HostileRow,
    Stack,
    configure_sender,
    israeli_numbers,
    start_broadcast,
    wait_for_status,
    wait_until,
    workflow_id_of,
)

CANARY_TEXT = "Canary message 7f3a: your receipt from Pita Palace is ready"
CANARY_NAME = "Canary broadcast q81z"
CANARY_EMAIL = "dana.canary@example.com"

# Generic shapes, searched in decoded payloads only (a worker identity "pid@host" is not one).
E164 = re.compile(r"\+\d{8,15}")
ISRAELI_MOBILE = re.compile(r"(?<![\w-])(?:\+?972-?|0)5\d-?\d{3}-?\d{4}(?![\w-])")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def _payload_texts(node: Any) -> Iterator[str]:
    """Every payload in a history's JSON, decoded (data and metadata values)."""
    if isinstance(node, dict):
        if isinstance(node.get("data"), str) and isinstance(node.get("metadata"), dict):
            for value in [node["data"], *node["metadata"].values()]:
                if isinstance(value, str):
                    yield base64.b64decode(value).decode("utf-8", errors="replace")
        for value in node.values():
            yield from _payload_texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _payload_texts(value)


def phone_forms(raw: str) -> set[str]:
    """The number as typed, digits only, E.164, E.164 without '+', national digits."""
    number = phonenumbers.parse(raw, "IL")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    digits = re.sub(r"\D", "", raw)
    return {raw, digits, e164, e164.lstrip("+"), str(number.national_number)}


def find_personal_data(history_json: str, forbidden: set[str]) -> list[str]:
    """What of `forbidden` or of the generic shapes appears in a history; [] when clean."""
    payloads = list(_payload_texts(json.loads(history_json)))
    decoded = "\n".join(payloads)
    found = [f"{word!r}" for word in forbidden if word in history_json or word in decoded]
    for pattern in (E164, ISRAELI_MOBILE, EMAIL):
        found += [f"{pattern.pattern}: {m!r}" for m in pattern.findall(decoded)]
    return found


async def _histories(stack: Stack, workflow_id: str) -> list[str]:
    """The JSON of every run of the workflow (continue-as-new chains included)."""
    run_ids: set[str] = set()

    async def listed() -> bool:
        async for execution in stack.client.list_workflows(f'WorkflowId="{workflow_id}"'):
            run_ids.add(execution.run_id)
        return bool(run_ids)

    await wait_until(listed, what=f"visibility of {workflow_id}")
    latest = await stack.client.get_workflow_handle(workflow_id).describe()
    run_ids.add(latest.run_id)
    histories = []
    for run_id in sorted(run_ids):
        handle = stack.client.get_workflow_handle(workflow_id, run_id=run_id)
        histories.append((await handle.fetch_history()).to_json())
    return histories


def test_the_detector_finds_what_it_looks_for() -> None:
    """The search is not vacuous: a payload carrying a number, a text or an email is caught."""

    def payload(value: object) -> dict[str, Any]:
        data = base64.b64encode(json.dumps(value).encode()).decode()
        return {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}, "data": data}

    for leaked in (
        {"phone": "+972523008101"},
        {"to": "052-300-8101"},
        {"to": "0523008101"},
        {"text": CANARY_TEXT},
        {"from": CANARY_EMAIL},
    ):
        history = json.dumps({"events": [{"input": {"payloads": [payload(leaked)]}}]})
        assert find_personal_data(history, {CANARY_TEXT}), leaked
    clean = json.dumps({"events": [{"input": {"payloads": [payload({"task_id": 12})]}}]})
    assert find_personal_data(clean, {CANARY_TEXT}) == []


async def test_no_personal_data_in_temporal_histories(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    business_id = await new_business()
    numbers = israeli_numbers(150, start=81_000)
    # A number typed in international form, one invalid, one duplicate: every intake path.
    typed = [*numbers, "+972 52-999-1234", "12345", numbers[0]]
    forbidden = {CANARY_TEXT, CANARY_NAME, CANARY_EMAIL}
    slow_numbers = israeli_numbers(1000, start=82_000)
    for raw in [*numbers, *slow_numbers, "+972 52-999-1234"]:
        forbidden |= phone_forms(raw)

    async with stack.http(business_id, "operator") as http:
        done = await start_broadcast(http, typed, name=CANARY_NAME, message={"text": CANARY_TEXT})
        template = await start_broadcast(
            http,
            numbers[:20],
            name=CANARY_NAME,
            message={
                "template": {"name": "receipt_ready", "language": "he", "params": [CANARY_TEXT]}
            },
        )
        await wait_for_status(http, done["task"]["id"], {"completed"})
        await wait_for_status(http, template["task"]["id"], {"completed"})

        # And one cancelled mid-way (the cancel signal crosses Temporal too).
        slow_business = await new_business()
        await configure_sender(stack, slow_business, latency_ms=50)
    async with stack.http(slow_business, "operator") as http:
        cancelled = await start_broadcast(
            http, slow_numbers, name=CANARY_NAME, message={"text": CANARY_TEXT}
        )
        task_id = cancelled["task"]["id"]

        async def some_progress() -> bool:
            task = (await http.get(f"/api/long_tasks/{task_id}")).json()
            return bool(task["processed_items"] > 0)

        await wait_until(some_progress, what="first sends")
        response = await http.post(f"/api/long_tasks/{task_id}/cancel", json={"reason": "stop"})
        assert response.status_code in (200, 202), response.text
        await wait_for_status(http, task_id, {"cancelled", "completed"})

    histories: list[str] = []
    for started in (done, template, cancelled):
        histories += await _histories(
            stack, await workflow_id_of(stack.engine, started["task"]["id"])
        )
    assert len(histories) >= 3
    # The decoding works: the ids that should be there are found.
    decoded = "\n".join(t for h in histories for t in _payload_texts(json.loads(h)))
    assert f'"task_id":{done["task"]["id"]}' in decoded.replace(" ", "")
    assert "recipients" in decoded  # the summary: "broadcast #N of business B: 153 recipients"

    leaks = {i: find_personal_data(h, forbidden) for i, h in enumerate(histories)}
    leaks = {i: found for i, found in leaks.items() if found}
    fault_report.add_hostile(
        HostileRow(
            scenario="personal data in Temporal: histories of real runs (text, template,"
            " cancelled) searched for phone numbers, message text, names, emails",
            requests=len(histories),
            server_errors=0,
            outcome=f"{len(histories)} run histories decoded: no personal data in any payload"
            if not leaks
            else f"FOUND: {leaks}",
        )
    )
    assert not leaks, leaks


def test_no_personal_data_in_the_committed_histories() -> None:
    files = sorted(Path(HISTORIES).glob("*.json"))
    assert files, "tests/histories is empty"
    # Texts the tests that recorded them used, besides the generic shapes.
    forbidden = {"Hello", "test broadcast", "direct"}
    leaks = {}
    for path in files:
        text = path.read_text()
        decoded = "\n".join(_payload_texts(json.loads(text)))
        found = [w for w in forbidden if w in decoded]
        found += find_personal_data(text, set())
        if found:
            leaks[path.name] = found
    assert not leaks, leaks


async def test_no_personal_data_in_receipt_histories(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    """A Gmail sync (mailbox address, subjects, senders) and a bulk delete, end to end; and the
    business's sync Schedule, whose action is stored in Temporal too."""
    from google.protobuf.json_format import MessageToJson
    from temporalio.service import RPCError

    from longtasks.temporal.gmail_schedule import gmail_schedule_id
    from tests.receipts.helpers import gmail_sandbox, mailbox_for, staged_ids

    business_id = await new_business()
    email = mailbox_for(business_id)
    refresh_token = f"sandbox:{email}"
    gmail = gmail_sandbox(stack)
    gmail.set_quota(quota_units_per_s=3000.0, rate_limit_403_fraction=0.0)
    try:
        async with stack.http(business_id, "admin") as http:
            response = await http.put(
                "/api/receipts/gmail_connection",
                json={"email": email, "refresh_token": refresh_token},
            )
            assert response.status_code == 200, response.text
            response = await http.post(
                "/api/receipts/sync", json={"since": "2025-06-01", "query": f"-from:{CANARY_EMAIL}"}
            )
            assert response.status_code == 202, response.text
            sync_id = response.json()["task"]["id"]
            sync = await wait_for_status(http, sync_id, {"completed"}, timeout_s=120)
            assert sync["total_items"] > 0
            receipts = (await http.get("/api/receipts", params={"limit": 20})).json()["items"]
            assert receipts
            response = await http.post(
                "/api/receipts/bulk_delete", json={"receipt_ids": [r["id"] for r in receipts]}
            )
            assert response.status_code == 202, response.text
            delete_id = response.json()["task"]["id"]
            await wait_for_status(http, delete_id, {"completed"})
        schedule = await stack.client.get_schedule_handle(gmail_schedule_id(business_id)).describe()
        schedule_json = MessageToJson(schedule.raw_description)
    finally:
        with contextlib.suppress(RPCError):
            await stack.client.get_schedule_handle(gmail_schedule_id(business_id)).delete()

    facts = [gmail.message_facts(email, mid) for mid in await staged_ids(stack.engine, sync_id)]
    forbidden = {email, refresh_token, CANARY_EMAIL}
    forbidden |= {f.subject for f in facts if len(f.subject) >= 8}
    forbidden |= {r["subject"] for r in receipts if r.get("subject") and len(r["subject"]) >= 8}
    histories = await _histories(stack, await workflow_id_of(stack.engine, sync_id))
    histories += await _histories(stack, await workflow_id_of(stack.engine, delete_id))
    leaks = {
        name: found
        for name, text in [*(("history", h) for h in histories), ("schedule", schedule_json)]
        if (found := find_personal_data(text, forbidden))
    }
    fault_report.add_hostile(
        HostileRow(
            scenario="personal data in Temporal: Gmail sync, bulk delete and the sync Schedule"
            " searched for the mailbox, tokens, subjects, senders",
            requests=len(histories) + 1,
            server_errors=0,
            outcome=f"{len(histories)} run histories decoded: no personal data in any payload"
            if not leaks
            else f"FOUND: {leaks}",
        )
    )
    assert not leaks, leaks


async def test_no_personal_data_in_audience_histories(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    """A customer list imported (its file name, list name, numbers and cells) and a template
    personalized from it: the import's and the broadcast's histories carry none of it."""
    from tests.audiences.helpers import csv_bytes, wait_audience

    business_id = await new_business()
    numbers = israeli_numbers(120, start=83_000)
    names = [f"Canary{i} Levi-zq{i:03d}" for i in range(120)]
    rows = [[n, name, "Canary City 44x"] for n, name in zip(numbers, names, strict=True)]
    rows.append(["12345", "Canary Invalid 5u", "x"])
    forbidden = {CANARY_NAME, "canary-list-7ye.csv", "Canary City 44x", "Canary Invalid 5u"}
    forbidden |= set(names)
    for raw in numbers:
        forbidden |= phone_forms(raw)
    async with stack.http(business_id, "operator") as http:
        response = await http.post(
            "/api/audiences",
            data={"name": CANARY_NAME},
            files={"file": ("canary-list-7ye.csv", csv_bytes(rows, ("phone", "name", "city")))},
        )
        assert response.status_code == 202, response.text
        imported = response.json()
        audience = await wait_audience(http, imported["audience"]["id"], {"ready"})
        response = await http.post(
            "/api/broadcasts",
            json={
                "name": CANARY_NAME,
                "audience_id": audience["id"],
                "message": {
                    "template": {
                        "name": "receipt_ready",
                        "language": "he",
                        "params": [{"column": "name"}, {"column": "city"}],
                    }
                },
            },
        )
        assert response.status_code == 202, response.text
        sent = response.json()
        await wait_for_status(http, sent["task"]["id"], {"completed"})
    histories = await _histories(stack, imported["task"]["workflow_id"])
    histories += await _histories(stack, sent["task"]["workflow_id"])
    decoded = "\n".join(t for h in histories for t in _payload_texts(json.loads(h)))
    assert "121 rows to import" in decoded  # the import's summary: counts only
    leaks = {
        i: found for i, h in enumerate(histories) if (found := find_personal_data(h, forbidden))
    }
    fault_report.add_hostile(
        HostileRow(
            scenario="personal data in Temporal: a CSV audience import and a template"
            " personalized from its columns, searched for numbers, names, cells, file name",
            requests=len(histories),
            server_errors=0,
            outcome=f"{len(histories)} run histories decoded: no personal data in any payload"
            if not leaks
            else f"FOUND: {leaks}",
        )
    )
    assert not leaks, leaks
