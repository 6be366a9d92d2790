"""Headless Chromium against the real stack (tests/conftest.py `stack`).

One browser for the session; each test gets a fresh context (its own localStorage,
sessionStorage and cookies) so nothing leaks between tests. The async Playwright API runs in
the session's event loop, next to the API, the worker and the sandbox.

Screenshots go to `.artifacts/screenshots/` (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    ViewportSize,
    async_playwright,
)

from tests.conftest import ARTIFACTS, Stack

# Debian's Chromium (`make test` finds or installs it: devtools/ensure-tool.sh), never a
# downloaded browser.
CHROMIUM = os.environ.get("CHROMIUM_PATH") or next(
    (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()),
    "/usr/bin/chromium",
)
SCREENSHOTS = ARTIFACTS / "screenshots"
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}

# Records every value each card's progressbar shows, in order, without gaps that polling from
# the test would leave: a MutationObserver on the whole document, installed before the page's
# own scripts run (so it survives reloads too). window.__progress[taskId] = [values...].
PROGRESS_RECORDER = """
(() => {
  window.__progress = {};
  const record = (bar) => {
    const card = bar.closest('long-task-card');
    const id = card && card.dataset.taskId;
    if (!id) return;
    const value = Number(bar.getAttribute('aria-valuenow'));
    const seen = (window.__progress[id] ??= []);
    if (seen.at(-1) !== value) seen.push(value);
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes' && r.target.getAttribute('role') === 'progressbar') {
        record(r.target);
      }
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow'] });
})();
"""


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        await browser.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    # Reduced motion: the progress bar's width transition would otherwise catch screenshots
    # mid-way (a full bar drawn at 60%).
    context = await browser.new_context(
        viewport=VIEWPORT,
        reduced_motion="reduce",
    )
    context.set_default_timeout(20_000)
    await context.add_init_script(PROGRESS_RECORDER)
    yield context
    await context.close()


@pytest.fixture
async def page_errors(context: BrowserContext) -> AsyncIterator[list[str]]:
    """Uncaught exceptions in any page of the context: the test fails if there are any."""
    errors: list[str] = []
    context.on("weberror", lambda e: errors.append(str(e.error)))
    yield errors
    assert errors == [], f"uncaught errors in the page: {errors}"


OpenPage = Callable[[int, str], Awaitable[tuple[Page, str]]]


@pytest.fixture
async def open_page(stack: Stack, context: BrowserContext, page_errors: list[str]) -> OpenPage:
    """`await open_page(business_id, role)` -> (page signed in through /#token=..., token)."""

    async def open_(business_id: int, role: str = "operator") -> tuple[Page, str]:
        token = stack.token(business_id, role)
        page = await context.new_page()
        await page.goto(f"{stack.api_url}/#token={token}")
        await page.locator("#app").wait_for(state="visible")
        # The business stream is open: changes from now on arrive live.
        await page.locator("#live-status[data-mode=stream]").wait_for(state="attached")
        return page, token

    return open_


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


def card(page: Page, task_id: int | str) -> Locator:
    """The <long-task-card> of one task."""
    return page.locator(f"long-task-card[data-task-id='{task_id}']")


async def progress_seen(page: Page, task_id: int | str) -> list[int]:
    values = await page.evaluate("(id) => window.__progress[String(id)] ?? []", str(task_id))
    return [int(v) for v in values]


async def local_storage(page: Page) -> dict[str, str]:
    items = await page.evaluate(
        "() => Object.fromEntries(Object.keys(localStorage).map(k => [k, localStorage.getItem(k)]))"
    )
    return {str(k): str(v) for k, v in items.items()}


async def session_storage(page: Page) -> dict[str, str]:
    items = await page.evaluate(
        "() => Object.fromEntries("
        "Object.keys(sessionStorage).map(k => [k, sessionStorage.getItem(k)]))"
    )
    return {str(k): str(v) for k, v in items.items()}


async def assert_no_token_in_local_storage(page: Page, token: str) -> None:
    stored = await local_storage(page)
    leaks = [k for k, v in stored.items() if token in v or token in k]
    assert not leaks, f"the token is in localStorage under {leaks}"
    # Parts of it neither (the signature alone is the secret half).
    signature = token.rsplit(".", 1)[-1]
    assert not any(signature in v for v in stored.values())
