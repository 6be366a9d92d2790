"""The web page in headless Chromium against the real stack (issue #4).

Each test signs in through `/#token=...` as a fresh business (so task lists never overlap) in
its own browser context (so localStorage and sessionStorage start empty).

Sender latency: at 20 ms the sends of a 300-recipient broadcast take well under a second on
this stack (32 in flight, settled every 250 ms, SSE coalesced over 250 ms), and the bar showed
only 0 -> 100 or 0 -> 83 -> 100. The tests that watch it climb use 200 ms (~3 s, 5-8 values).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, Request, Route, expect

from tests.browser.conftest import (
    OpenPage,
    assert_no_token_in_local_storage,
    card,
    local_storage,
    progress_seen,
    screenshot,
    session_storage,
)
from tests.conftest import Stack, configure_sender, israeli_numbers, start_broadcast

pytestmark = pytest.mark.browser

NewBusiness = Callable[[], Awaitable[int]]

CLIMB_LATENCY_MS = 200  # 300 recipients take ~2-3 s: the bar shows 5-8 distinct values


async def start_from_form(
    page: Page,
    name: str,
    text: str,
    recipients: list[str],
    how: Literal["lines", "commas", "file"] = "lines",
) -> int:
    """Fill and submit #broadcast-form; returns the started task's id (from the form status).

    `how` the recipients go in: one per line in the textarea, comma separated in it, or as an
    uploaded CSV file. (Chromium types a textarea's line breaks slowly: 3,000 lines take ~15 s,
    so large lists go in comma separated or as a file.)
    """
    form = page.locator("#broadcast-form")
    await form.locator("#bc-name").fill(name)
    await form.locator("#bc-text").fill(text)
    if how == "file":
        csv_text = "phone\n" + "\n".join(recipients) + "\n"
        await form.locator("#bc-recipients-file").set_input_files(
            {"name": "recipients.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}
        )
    else:
        separator = "\n" if how == "lines" else ", "
        await form.locator("#bc-recipients").fill(separator.join(recipients))
    await expect(form.locator("[data-role=recipient-count]")).to_contain_text(
        re.compile(rf"{len(recipients):,}|{len(recipients)}")
    )
    await form.locator("button[type=submit]").click()
    status = form.locator("[data-role=form-status][data-started-id]")
    await expect(status).to_be_attached()
    started_id = await status.get_attribute("data-started-id")
    assert started_id is not None
    return int(started_id)


async def counters(page: Page, task_id: int) -> dict[str, int]:
    values = (
        await card(page, task_id)
        .locator("[data-counter]")
        .evaluate_all(
            "nodes => Object.fromEntries("
            "nodes.map(n => [n.dataset.counter, Number(n.dataset.value)]))"
        )
    )
    return {str(k): int(v) for k, v in values.items()}


async def rest_task(stack: Stack, business_id: int, task_id: int) -> dict[str, Any]:
    async with stack.http(business_id, "viewer") as http:
        response = await http.get(f"/api/long_tasks/{task_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())


async def wait_for_processed(page: Page, task_id: int, at_least: int) -> None:
    await page.wait_for_function(
        """([id, n]) => {
            const c = document.querySelector(
                `long-task-card[data-task-id="${id}"] [data-counter=processed]`);
            return c !== null && Number(c.dataset.value) >= n;
        }""",
        arg=[task_id, at_least],
    )


def assert_climbed(seen: list[int]) -> None:
    assert len(set(seen)) >= 3, f"the bar showed only {seen}"
    assert seen == sorted(seen), f"the bar went backwards: {seen}"
    assert seen[-1] == 100, seen


# ---- 1. start from the form, watch it climb ------------------------------------------------


async def test_a_broadcast_started_from_the_form_climbs_to_100(
    stack: Stack, new_business: NewBusiness, open_page: OpenPage
) -> None:
    business_id = await new_business()
    await configure_sender(stack, business_id, latency_ms=CLIMB_LATENCY_MS)
    page, token = await open_page(business_id, "operator")
    # Signing in took the token out of the address bar.
    assert "token" not in page.url
    total = 300

    task_id = await start_from_form(page, "browser", "שלום!", israeli_numbers(total, start=600_000))
    the_card = card(page, task_id)
    bar = the_card.locator("[role=progressbar]")
    await expect(the_card).to_have_attribute("data-status", "running")
    await expect(the_card).to_have_class(re.compile(r"\bis-tracked\b"))
    await wait_for_processed(page, task_id, 1)
    await screenshot(page, "running")

    await expect(bar).to_have_attribute("aria-valuenow", "100", timeout=25_000)
    await expect(the_card).to_have_attribute("data-status", "completed")
    await expect(the_card.locator("[data-action=cancel]")).to_be_hidden()
    await screenshot(page, "completed")

    assert_climbed(await progress_seen(page, task_id))
    got = await counters(page, task_id)
    assert got == {
        "processed": total,
        "total": total,
        "success": total,
        "failed": 0,
        "cancelled": 0,
        "skipped": 0,
    }
    task = await rest_task(stack, business_id, task_id)
    assert task["status"] == "completed" and task["success_count"] == total
    await assert_no_token_in_local_storage(page, token)


# ---- 2. cancel mid-way from the card --------------------------------------------------------


async def test_cancel_from_the_card_mid_way(
    stack: Stack, new_business: NewBusiness, open_page: OpenPage
) -> None:
    business_id = await new_business()
    await configure_sender(stack, business_id, latency_ms=100)
    page, token = await open_page(business_id, "operator")
    total = 3000

    task_id = await start_from_form(
        page, "to cancel", "cancel me", israeli_numbers(total, start=610_000), how="file"
    )
    the_card = card(page, task_id)
    cancel = the_card.locator("[data-action=cancel]")
    await wait_for_processed(page, task_id, 100)
    await expect(cancel).to_be_enabled()
    await expect(cancel).to_have_text("ביטול")

    await cancel.click()
    # Feedback at once, while the workflow finishes the sends in flight.
    await expect(the_card).to_have_class(re.compile(r"\bis-cancelling\b"))
    await expect(cancel).to_have_text("מבטל...")
    await expect(cancel).to_be_disabled()
    await screenshot(page, "cancelling")

    await expect(the_card).to_have_attribute("data-status", "cancelled", timeout=20_000)
    await expect(the_card).not_to_have_class(re.compile(r"\bis-cancelling\b"))
    await expect(cancel).to_be_hidden()
    await expect(the_card.locator("[data-field=status]")).to_have_text("בוטל")
    await expect(the_card.locator("[data-field=status-reason]")).to_have_text("cancelled by user")
    await screenshot(page, "cancelled")

    got = await counters(page, task_id)
    assert got["total"] == total
    assert got["success"] + got["failed"] + got["cancelled"] == total
    assert got["cancelled"] > 0
    assert got["success"] >= 100
    task = await rest_task(stack, business_id, task_id)
    assert task["status"] == "cancelled" and task["cancel_requested"] is True
    assert (task["success_count"], task["failed_count"], task["cancelled_count"]) == (
        got["success"],
        got["failed"],
        got["cancelled"],
    )
    await assert_no_token_in_local_storage(page, token)


# ---- 3. reload while running, then dismiss --------------------------------------------------


def _is_list_or_business_stream(url: str) -> bool:
    path = httpx.URL(url).path
    return path in ("/api/long_tasks", "/api/long_tasks/events")


async def test_a_reload_finds_the_running_task_again_and_dismiss_forgets_it(
    stack: Stack, new_business: NewBusiness, open_page: OpenPage
) -> None:
    business_id = await new_business()
    await configure_sender(stack, business_id, latency_ms=CLIMB_LATENCY_MS)
    page, token = await open_page(business_id, "operator")
    total = 800
    key = f"longtasks:active:{business_id}:broadcast"

    task_id = await start_from_form(
        page, "reload", "still there?", israeli_numbers(total, start=620_000), how="commas"
    )
    await wait_for_processed(page, task_id, 1)
    # What the page keeps: the token per tab (sessionStorage), the task id in localStorage.
    assert (await session_storage(page)).get("longtasks:token") == token
    entries = json.loads((await local_storage(page))[key])
    assert [(e["taskId"], e["status"]) for e in entries] == [(task_id, "running")]
    await assert_no_token_in_local_storage(page, token)

    # Reload with the task list and the business stream unreachable: the card can then only
    # come back from localStorage (a placeholder, then GET /api/long_tasks/{id} and its own
    # stream).
    blocked: list[str] = []

    async def block(route: Route, request: Request) -> None:
        blocked.append(request.url)
        await route.abort()

    await page.route(_is_list_or_business_stream, block)
    await page.reload()
    await page.locator("#app").wait_for(state="visible")  # still signed in: sessionStorage
    assert "token" not in page.url
    the_card = card(page, task_id)
    await expect(the_card).to_be_visible()
    await expect(the_card).to_have_class(re.compile(r"\bis-tracked\b"))
    await expect(the_card).not_to_have_attribute("data-loading", "")
    await expect(the_card).to_have_attribute("data-status", "running")
    processed_before = (await counters(page, task_id))["processed"]
    await wait_for_processed(page, task_id, processed_before + 1)  # and it is live
    assert blocked, "the reload did not try the list"
    assert await page.locator("long-task-card").count() == 1
    await screenshot(page, "reloaded")
    await page.unroute(_is_list_or_business_stream, block)

    await expect(the_card).to_have_attribute("data-status", "completed", timeout=25_000)
    assert (await counters(page, task_id))["success"] == total
    # With the list reachable again, the business feed reloads it: the error goes away.
    await expect(page.locator("#task-list-error")).to_be_hidden(timeout=15_000)
    # The terminal entry stays for a while (to read the outcome after a reload) ...
    entries = json.loads((await local_storage(page))[key])
    assert [(e["taskId"], e["status"]) for e in entries] == [(task_id, "completed")]

    # ... until the card is dismissed.
    await the_card.locator("[data-action=dismiss]").click()
    await expect(the_card).to_have_count(0)
    assert key not in await local_storage(page)
    show_dismissed = page.locator("#show-dismissed")
    await expect(show_dismissed).to_be_visible()
    await expect(page.locator("#task-list-empty")).to_be_visible()
    await screenshot(page, "dismissed")

    # Dismissed stays dismissed for this tab, even though the list endpoint returns the task.
    await page.reload()
    await page.locator("#app").wait_for(state="visible")
    await expect(page.locator("#task-list")).to_have_attribute("aria-busy", "false")
    await expect(show_dismissed).to_be_visible()
    assert await the_card.count() == 0
    # And can be brought back.
    await show_dismissed.click()
    await expect(the_card).to_have_attribute("data-status", "completed")
    await expect(the_card).not_to_have_class(re.compile(r"\bis-tracked\b"))
    await assert_no_token_in_local_storage(page, token)


# ---- 4. right-to-left Hebrew by default, English on request --------------------------------


async def _layout(page: Page) -> dict[str, Any]:
    return dict(
        await page.evaluate(
            """() => {
                const box = (s) => document.querySelector(s).getBoundingClientRect();
                return {
                    dir: document.documentElement.dir,
                    lang: document.documentElement.lang,
                    direction: getComputedStyle(document.body).direction,
                    title: document.querySelector('h1').textContent,
                    start: box('.start-column').left,
                    tasks: box('.tasks-column').left,
                };
            }"""
        )
    )


async def test_the_page_is_hebrew_rtl_by_default_and_switches_to_english_ltr(
    stack: Stack, new_business: NewBusiness, open_page: OpenPage
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "operator") as http:
        started = await start_broadcast(http, israeli_numbers(5, start=630_000) + ["12"])
    task_id = started["task"]["id"]
    page, token = await open_page(business_id, "operator")
    the_card = card(page, task_id)
    await expect(the_card).to_have_attribute("data-status", "completed", timeout=20_000)

    await expect(page.locator("html[dir=rtl][lang=he]")).to_have_count(1)
    rtl = await _layout(page)
    assert rtl["direction"] == "rtl"
    assert rtl["title"] == "משימות ארוכות"
    assert rtl["start"] > rtl["tasks"], "the form column should be on the right in Hebrew"
    await expect(the_card.locator("[data-field=status]")).to_have_text("הושלם")

    toggle = page.locator("#lang-toggle")
    await expect(toggle).to_have_text("English")
    await toggle.click()
    await expect(page.locator("html[dir=ltr][lang=en]")).to_have_count(1)
    ltr = await _layout(page)
    assert ltr["direction"] == "ltr"
    assert ltr["title"] != rtl["title"]
    assert ltr["start"] < ltr["tasks"], "the form column should be on the left in English"
    # Dynamic texts re-render in English too.
    await expect(the_card.locator("[data-field=status]")).to_have_text(
        re.compile("completed", re.IGNORECASE)
    )
    await expect(the_card.locator("[data-action=dismiss]")).not_to_have_text("הסתרה")
    await expect(toggle).not_to_have_text("English")
    await screenshot(page, "english")

    # The choice is a preference kept in localStorage: it survives a reload.
    assert (await local_storage(page)).get("longtasks:lang") == "en"
    await page.reload()
    await page.locator("#app").wait_for(state="visible")
    await expect(page.locator("html[dir=ltr][lang=en]")).to_have_count(1)
    await toggle.click()
    await expect(page.locator("html[dir=rtl][lang=he]")).to_have_count(1)
    await expect(card(page, task_id).locator("[data-field=status]")).to_have_text("הושלם")
    await assert_no_token_in_local_storage(page, token)


# ---- 5. the acceptance check: a REST-started task, live -----------------------------


async def test_a_task_started_over_rest_climbs_live_in_an_rtl_page(
    stack: Stack, new_business: NewBusiness, open_page: OpenPage
) -> None:
    """The page opened at /#token=... in headless Chromium shows a role=progressbar for a
    broadcast started over REST, which climbs through several values to 100, in a
    right-to-left page."""
    business_id = await new_business()
    await configure_sender(stack, business_id, latency_ms=CLIMB_LATENCY_MS)
    page, token = await open_page(business_id, "viewer")
    await expect(page.locator("#task-list-empty")).to_be_visible()
    await expect(page.locator("#live-status")).to_have_attribute("data-mode", "stream")

    total = 300
    async with stack.http(business_id, "operator") as http:
        started = await start_broadcast(http, israeli_numbers(total, start=640_000))
    task_id = started["task"]["id"]

    the_card = card(page, task_id)
    bar = the_card.locator("[role=progressbar]")
    await expect(bar).to_be_visible()
    await expect(bar).to_have_attribute("aria-valuemin", "0")
    await expect(bar).to_have_attribute("aria-valuemax", "100")
    await expect(bar).to_have_attribute("aria-valuenow", "100", timeout=25_000)
    await expect(the_card).to_have_attribute("data-status", "completed")
    await expect(page.locator("html[dir=rtl][lang=he]")).to_have_count(1)
    assert_climbed(await progress_seen(page, task_id))

    # It came through the business stream alone: not started here, so neither tracked in
    # localStorage nor watched on its own; and the viewer gets no cancel button.
    await expect(the_card).not_to_have_class(re.compile(r"\bis-tracked\b"))
    assert not any(k.startswith("longtasks:active:") for k in await local_storage(page))
    await expect(the_card.locator("[data-action=cancel]")).to_be_hidden()
    await expect(page.locator("#live-status")).to_have_attribute("data-mode", "stream")
    assert (await counters(page, task_id))["success"] == total
    await screenshot(page, "rest-completed")
    await assert_no_token_in_local_storage(page, token)


# ---- 6. per-item failures and the CSV export ------------------------------------------------


async def test_failed_items_show_their_reason_and_export_as_csv(
    stack: Stack, new_business: NewBusiness, open_page: OpenPage
) -> None:
    business_id = await new_business()
    page, token = await open_page(business_id, "operator")
    invalid = ["12", "not a phone", "+1 555"]
    undeliverable = "052-3020000"  # the sandbox's "not on WhatsApp"
    valid = israeli_numbers(20, start=650_000)

    task_id = await start_from_form(page, "failures", "hi", [*valid, *invalid, undeliverable])
    form_status = page.locator("#broadcast-form [data-role=form-status]")
    await expect(form_status).to_contain_text("21")  # accepted
    the_card = card(page, task_id)
    await expect(the_card).to_have_attribute("data-status", "completed", timeout=20_000)
    got = await counters(page, task_id)
    assert (got["total"], got["success"], got["failed"]) == (24, 20, 4)

    failures = the_card.locator("details[data-section=failures]")
    await expect(failures).to_be_visible()
    await expect(failures.locator("summary")).to_contain_text("4")
    await failures.locator("summary").click()
    rows = failures.locator("tbody tr")
    await expect(rows).to_have_count(4)
    codes = await rows.locator(".item-code").all_text_contents()
    assert sorted(codes) == sorted(["invalid_phone"] * 3 + ["131026"]), codes
    for i in range(4):
        row = rows.nth(i)
        assert (await row.locator(".item-reason").text_content() or "").strip(), "no reason"
    labels = " ".join(await rows.locator(".item-label").all_text_contents())
    for raw in invalid:
        assert raw in labels, (raw, labels)
    # Phone numbers read left to right inside the right-to-left table ("+1 555", not "555 1+").
    directions = await rows.locator(".item-label").evaluate_all(
        "nodes => nodes.map(n => getComputedStyle(n).direction)"
    )
    assert directions == ["ltr"] * 4, directions
    await screenshot(page, "failures")

    link = failures.locator("a[data-action=export-csv]")
    await expect(link).to_be_visible()
    await expect(link).to_have_attribute("download", "")
    # The link shows the CSV's plain address: no token, no ticket (URLs end up in logs).
    href = await link.get_attribute("href")
    assert href == f"/api/long_tasks/{task_id}/items.csv?status=failed", href
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        assert (await http.get(href)).status_code == 401
        minted = await http.post(
            "/api/tickets",
            json={"path": href.partition("?")[0]},
            headers={"Authorization": f"Bearer {token}"},
        )
        response = await http.get(minted.json()["url"] + "&status=failed")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert len(table) == 4
    assert {r["status"] for r in table} == {"failed"}
    assert sorted(r["error_code"] for r in table) == sorted(codes)
    assert all(r["error_message"] for r in table)

    # A click mints a ticket and downloads with it.
    async with page.expect_download() as download_info:
        await link.click()
    download = await download_info.value
    assert download.suggested_filename == f"task-{task_id}-failed.csv"
    path = await download.path()
    assert path.read_bytes() == response.content
    await assert_no_token_in_local_storage(page, token)


# ---- 7. a failed first list load does not hide what the live feed brings ---------------------


async def test_the_list_recovers_when_its_first_load_failed(
    stack: Stack, new_business: NewBusiness, open_page: OpenPage, context: BrowserContext
) -> None:
    """The list endpoint fails at sign-in (a network blip); the business stream works.
    A task started afterwards must still show up, and the stale error must go away."""
    business_id = await new_business()
    failing = [True]

    async def fail_until_seen(route: Route) -> None:
        if failing[0]:
            await route.abort()
        else:
            await route.fallback()

    await context.route(lambda url: httpx.URL(url).path == "/api/long_tasks", fail_until_seen)
    page, _ = await open_page(business_id, "viewer")
    await expect(page.locator("#task-list-error")).to_be_visible()
    # The page retries the list when the stream opens: keep failing until the error was seen.
    failing[0] = False

    async with stack.http(business_id, "operator") as http:
        started = await start_broadcast(http, israeli_numbers(20, start=660_000))
    task_id = started["task"]["id"]
    the_card = card(page, task_id)
    await expect(the_card).to_have_attribute("data-status", "completed", timeout=15_000)
    # Retried within LIST_POLL_MS (5 s) of the deliveries, even after the last one.
    await expect(page.locator("#task-list-error")).to_be_hidden(timeout=15_000)


# ---- 8. the live indicator tells the truth while the stream reconnects ----------------------


async def test_the_live_indicator_says_connecting_while_the_stream_reconnects(
    stack: Stack, new_business: NewBusiness, open_page: OpenPage, context: BrowserContext
) -> None:
    """An EventSource that errors is reconnecting by itself (a proxy cut the stream, the API
    restarted): the page must not keep saying "live" until the stream is open again."""
    # Keep a handle on the page's real EventSource objects, to deliver the error event the
    # browser fires when a stream drops.
    await context.add_init_script(
        "(() => { const Real = window.EventSource; window.__streams = [];"
        " window.EventSource = class extends Real {"
        " constructor(...args) { super(...args); window.__streams.push(this); } }; })();"
    )
    business_id = await new_business()
    page, _ = await open_page(business_id, "viewer")
    status = page.locator("#live-status")
    await expect(status).to_have_attribute("data-mode", "stream")
    await expect(status).to_have_text("עדכונים חיים")

    await page.evaluate("window.__streams.at(-1).dispatchEvent(new Event('error'))")
    await expect(status).to_have_attribute("data-mode", "connecting")
    await expect(status).to_have_text("מתחבר לעדכונים חיים…")

    await page.evaluate("window.__streams.at(-1).dispatchEvent(new Event('open'))")
    await expect(status).to_have_attribute("data-mode", "stream")
    # Three errors within ten seconds: the stream is given up for polling.
    for _ in range(3):
        await page.evaluate("window.__streams.at(-1).dispatchEvent(new Event('error'))")
    await expect(status).to_have_attribute("data-mode", "polling")
