"""The example host app (web/examples: React + Vite, @longtasks/ui from its package) in headless
Chromium against the real stack, served from another origin than the API (issue #13).

The host is `vite preview` on its own port; the API is a dedicated instance of the stack's
app whose CORS_ORIGINS names the host's origin. The page starts a broadcast through the typed
client (cross-origin POST), the seed's BroadcastPage follows it by polling through the host's
/api gateway, and useLongTask follows it live over the API origin's SSE stream; the test
watches the seed's bar climb, cancels from the seed's card, and reads the cancelled counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, Request, expect

from tests.conftest import Stack, _free_port, configure_sender, israeli_numbers
from tests.security.conftest import dedicated_api

pytestmark = pytest.mark.browser

EXAMPLES = Path(__file__).resolve().parents[2] / "web" / "examples"
NewBusiness = Callable[[], Awaitable[int]]

# Records the values each section's progressbar shows, in order (as PROGRESS_RECORDER does for
# the service page, but per section: the seed's card and the live card show the same task).
SECTION_RECORDER = """
(() => {
  window.__bars = {};
  new MutationObserver((records) => {
    for (const r of records) {
      const bar = r.target;
      if (r.type !== 'attributes' || bar.getAttribute('role') !== 'progressbar') continue;
      const section = bar.closest('section')?.id ?? 'none';
      const seen = (window.__bars[section] ??= []);
      const value = Number(bar.getAttribute('aria-valuenow'));
      if (seen.at(-1) !== value) seen.push(value);
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow'] });
})();
"""


@contextlib.asynccontextmanager
async def example_host(api_url: str, port: int) -> AsyncIterator[str]:
    """`vite preview` of the built example (make test builds it), forwarding /api to api_url."""
    if not (EXAMPLES / "dist" / "index.html").exists():
        pytest.fail("web/examples is not built: run `make example` (make test does)")
    npx = shutil.which("npx")
    assert npx is not None, "npx (Node.js) is needed: make test checks for it"
    process = await asyncio.create_subprocess_exec(
        npx,
        "vite",
        "preview",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--strictPort",
        cwd=EXAMPLES,
        env={**os.environ, "LONGTASKS_API": api_url},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                if process.returncode is not None:
                    stderr = await process.stderr.read() if process.stderr else b""
                    pytest.fail(f"vite preview exited: {stderr.decode(errors='replace')}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(origin)).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("vite preview did not answer within 30 s")
        yield origin
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        await process.wait()


async def bars(page: Page, section: str) -> list[int]:
    values = await page.evaluate("(s) => window.__bars[s] ?? []", section)
    return [int(v) for v in values]


async def counter(page: Page, section: str, name: str) -> int:
    value = await page.locator(f"#{section} [data-counter={name}]").get_attribute("data-value")
    assert value is not None
    return int(value)


async def test_the_seed_broadcast_page_in_a_react_host_on_another_origin(
    stack: Stack, new_business: NewBusiness, context: BrowserContext, page_errors: list[str]
) -> None:
    business_id = await new_business()
    # ~160 sends/s: the seed's 2.5 s polls see the bar at several values before the cancel.
    await configure_sender(stack, business_id, latency_ms=200)
    host_port = _free_port()
    host_origin = f"http://127.0.0.1:{host_port}"
    token = stack.token(business_id, "operator")
    total = 3000

    async with (
        dedicated_api(stack, cors_origins=[host_origin]) as api_url,
        example_host(api_url, host_port) as origin,
    ):
        assert httpx.URL(origin).port != httpx.URL(api_url).port  # two origins
        await context.add_init_script(SECTION_RECORDER)
        page = await context.new_page()
        to_api: list[Request] = []
        page.on("request", lambda r: to_api.append(r) if r.url.startswith(api_url) else None)
        await page.goto(f"{origin}/?api={api_url}&token={token}&business={business_id}")

        form = page.locator("#start-broadcast")
        await form.locator("textarea[name=recipients]").fill(
            ", ".join(israeli_numbers(total, start=700_000))
        )
        await form.locator("button[type=submit]").click()

        seed_card = page.locator("#seed-page long-task-card")
        live_card = page.locator("#live-task long-task-card")
        await expect(seed_card).to_have_attribute("data-status", "running", timeout=20_000)
        task_id = int(await seed_card.get_attribute("data-task-id") or 0)
        assert task_id > 0
        await expect(live_card).to_have_attribute("data-task-id", str(task_id))

        # The seed's bar climbs (its own polling, every 2.5 s) ...
        await page.wait_for_function(
            "() => new Set(window.__bars['seed-page'] ?? []).size >= 3", timeout=30_000
        )
        cancel = seed_card.locator("[data-action=cancel]")
        await expect(cancel).to_be_visible()
        await cancel.click()

        # ... and after the cancel both cards end cancelled, with the same counts as the API.
        await expect(seed_card).to_have_attribute("data-status", "cancelled", timeout=30_000)
        await expect(live_card).to_have_attribute("data-status", "cancelled", timeout=30_000)
        await expect(seed_card.locator("[data-action=cancel]")).to_be_hidden()
        seed_seen = await bars(page, "seed-page")
        assert len(set(seed_seen)) >= 3, seed_seen
        assert seed_seen == sorted(seed_seen), f"the seed's bar went backwards: {seed_seen}"
        live_seen = await bars(page, "live-task")
        assert live_seen == sorted(live_seen), f"the live bar went backwards: {live_seen}"

        async with stack.http(business_id, "viewer") as http:
            task = (await http.get(f"/api/long_tasks/{task_id}")).json()
        assert task["status"] == "cancelled" and task["cancel_requested"] is True
        assert task["cancelled_count"] > 0
        assert task["success_count"] + task["failed_count"] + task["cancelled_count"] == total
        # The live card shows the cancelled counts (the seed passes no `cancelled` prop, so its
        # card shows what it was given: success and failed).
        for name, field in (
            ("success", "success_count"),
            ("failed", "failed_count"),
            ("cancelled", "cancelled_count"),
            ("total", "total_items"),
        ):
            assert await counter(page, "live-task", name) == task[field], name
        await expect(seed_card.locator("[data-counter=success]")).to_have_attribute(
            "data-value", str(task["success_count"])
        )
        await expect(seed_card.locator("[data-field=status]")).to_have_text(
            re.compile("cancelled", re.IGNORECASE)
        )

        # Cross-origin for real: the start and the live stream went to the API's origin (CORS),
        # the seed's polls and cancel to the host's own /api gateway.
        paths = {(r.method, httpx.URL(r.url).path) for r in to_api}
        assert ("POST", "/api/broadcasts") in paths
        assert ("GET", f"/api/long_tasks/{task_id}/events") in paths
        assert ("POST", f"/api/long_tasks/{task_id}/cancel") not in paths
        await page.close()
