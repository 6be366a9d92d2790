"""`GmailHttpClient` against the Gmail sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from devtools.sandbox.gmail import GmailSandbox
from longtasks.providers.gmail import (
    GmailAuthRevoked,
    GmailCredentials,
    GmailHistoryTooOld,
    GmailHttpClient,
    GmailNotFound,
    GmailRateLimited,
    GmailTransientError,
    TokenBucketPacer,
)
from longtasks.receipt_parsing import MalformedReceipt, ParsedReceipt, parse_receipt

EMAIL = "dana@example.com"


@contextlib.asynccontextmanager
async def serving(sandbox: GmailSandbox) -> AsyncIterator[str]:
    app = web.Application()
    sandbox.add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def connected(
    sandbox: GmailSandbox, quota_units_per_s: float = 1e6, **options: Any
) -> AsyncIterator[tuple[GmailHttpClient, GmailCredentials]]:
    async with serving(sandbox) as base_url, aiohttp.ClientSession() as session:
        client = GmailHttpClient(
            session,
            base_url,
            f"{base_url}/oauth2/token",
            "client-id",
            "client-secret",
            quota_units_per_s,
            rng=random.Random(1),
            **options,
        )
        account = sandbox.register_account(EMAIL)
        yield client, GmailCredentials(account["access_token"], account["refresh_token"])


async def test_pages_through_every_id() -> None:
    sandbox = GmailSandbox(mailbox_size=250)
    async with connected(sandbox) as (gmail, credentials):
        ids: list[str] = []
        page_token: str | None = None
        pages = 0
        while True:
            page = await gmail.list_message_ids(
                credentials, query=None, page_token=page_token, max_results=100
            )
            ids += page.ids
            pages += 1
            page_token = page.next_page_token
            if page_token is None:
                break
        assert pages == 3
        assert len(ids) == len(set(ids)) == 250

        queried = await gmail.list_message_ids(
            credentials, query="after:2025/05/01", max_results=500
        )
        assert queried.next_page_token is None
        assert 0 < len(queried.ids) < 250
        assert set(queried.ids) <= set(ids)
    assert sandbox.stats()["list_calls"] == 4


async def test_get_and_parse() -> None:
    sandbox = GmailSandbox(mailbox_size=60)
    async with connected(sandbox) as (gmail, credentials):
        page = await gmail.list_message_ids(credentials, max_results=25)
        receipts = 0
        for message_id in page.ids:
            message = await gmail.get_message(credentials, message_id)
            assert message["id"] == message_id
            facts = sandbox.message_facts(EMAIL, message_id)
            try:
                result = parse_receipt(message)
            except MalformedReceipt:
                assert facts.kind == "malformed"
                continue
            if isinstance(result, ParsedReceipt):
                receipts += 1
                assert (result.amount, result.currency, result.vendor) == (
                    facts.amount,
                    facts.currency,
                    facts.vendor,
                )
            else:
                assert facts.kind == "newsletter"
        assert receipts > 10

        with pytest.raises(GmailNotFound):
            await gmail.get_message(credentials, page.ids[0][:6] + "ffffffffff")


async def test_history_incremental_sync() -> None:
    sandbox = GmailSandbox(mailbox_size=30)
    async with connected(sandbox) as (gmail, credentials):
        profile = await gmail.get_profile(credentials)
        assert profile.email == EMAIL
        assert profile.messages_total == 30

        nothing = await gmail.list_history(credentials, start_history_id=profile.history_id)
        assert nothing.message_ids == ()
        assert nothing.history_id == profile.history_id

        delivered = sandbox.deliver(EMAIL, 130)
        seen: list[str] = []
        page_token: str | None = None
        while True:
            page = await gmail.list_history(
                credentials, start_history_id=profile.history_id, page_token=page_token
            )
            seen += page.message_ids
            page_token = page.next_page_token
            if page_token is None:
                break
        assert seen == delivered
        latest = await gmail.get_profile(credentials)
        assert page.history_id == latest.history_id > profile.history_id
        assert latest.messages_total == 160

        sandbox.deliver(EMAIL, 2)
        after = await gmail.list_history(credentials, start_history_id=page.history_id)
        assert len(after.message_ids) == 2


async def test_history_too_old() -> None:
    sandbox = GmailSandbox(mailbox_size=10)
    async with connected(sandbox) as (gmail, credentials):
        start = (await gmail.get_profile(credentials)).history_id
        sandbox.deliver(EMAIL, 3)
        sandbox.expire_history(EMAIL)
        with pytest.raises(GmailHistoryTooOld) as caught:
            await gmail.list_history(credentials, start_history_id=start)
        assert not caught.value.retryable


async def test_expired_token_is_refreshed_transparently() -> None:
    sandbox = GmailSandbox(mailbox_size=10)
    async with connected(sandbox) as (gmail, credentials):
        original = credentials.access_token
        sandbox.expire_access_tokens(EMAIL)
        # Concurrent calls that all meet the 401 share one refresh.
        profiles = await asyncio.gather(*(gmail.get_profile(credentials) for _ in range(5)))
        assert {p.email for p in profiles} == {EMAIL}
        assert credentials.access_token != original
        assert sandbox.stats()["token_refreshes"] == 1
        assert sandbox.stats()["auth_errors"] == 5

        # Only a refresh token stored: the client fetches an access token first.
        bare = GmailCredentials(access_token="", refresh_token=credentials.refresh_token)
        await gmail.get_profile(bare)
        assert bare.access_token
        assert sandbox.stats()["token_refreshes"] == 2


async def test_revoked_grant_is_permanent() -> None:
    sandbox = GmailSandbox(mailbox_size=10)
    async with connected(sandbox) as (gmail, credentials):
        sandbox.revoke(EMAIL)
        with pytest.raises(GmailAuthRevoked) as caught:
            await gmail.list_message_ids(credentials)
        assert caught.value.code == "invalid_grant"
        assert not caught.value.retryable

        unknown = GmailCredentials(access_token="", refresh_token="never-issued")
        with pytest.raises(GmailAuthRevoked):
            await gmail.refresh(unknown)


async def test_quota_exceeded_backs_off_and_succeeds() -> None:
    # The client paces at far more than the sandbox allows, so the sandbox must push back.
    sandbox = GmailSandbox(mailbox_size=60, quota_units_per_s=80, rate_limit_403_fraction=0.3)
    async with connected(
        sandbox,
        quota_units_per_s=1e6,
        max_rate_limit_retries=30,
        backoff_base_s=0.05,
        backoff_max_s=0.4,
    ) as (gmail, credentials):
        ids = (await gmail.list_message_ids(credentials, max_results=40)).ids
        messages = await asyncio.gather(*(gmail.get_message(credentials, i) for i in ids))
    assert [m["id"] for m in messages] == list(ids)
    stats = sandbox.stats()
    assert stats["quota_errors"] > 0
    assert stats["get_calls"] == 40 + stats["quota_errors"]


async def test_client_pacing_keeps_under_the_quota() -> None:
    sandbox = GmailSandbox(mailbox_size=60, quota_units_per_s=100)
    async with connected(sandbox, quota_units_per_s=100) as (gmail, credentials):
        ids = (await gmail.list_message_ids(credentials, max_results=25)).ids
        await asyncio.gather(*(gmail.get_message(credentials, i) for i in ids))
    assert sandbox.stats()["quota_errors"] == 0
    assert sandbox.stats()["get_calls"] == 25


async def test_rate_limit_retries_are_bounded() -> None:
    # One unit per second can never pay for a 5-unit call.
    sandbox = GmailSandbox(mailbox_size=10, quota_units_per_s=1)
    async with connected(
        sandbox, max_rate_limit_retries=2, backoff_base_s=0.01, backoff_max_s=0.02
    ) as (gmail, credentials):
        with pytest.raises(GmailRateLimited) as caught:
            await gmail.list_message_ids(credentials)
    assert caught.value.retryable
    assert caught.value.retry_after_s > 0
    assert sandbox.stats()["quota_errors"] == 3


async def test_server_and_network_errors_are_transient() -> None:
    sandbox = GmailSandbox(mailbox_size=10, server_error_rate=1.0)
    async with connected(sandbox) as (gmail, credentials):
        with pytest.raises(GmailTransientError) as caught:
            await gmail.get_profile(credentials)
        assert caught.value.retryable

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        nowhere = f"http://127.0.0.1:{closed_port}"
        gmail = GmailHttpClient(session, nowhere, f"{nowhere}/oauth2/token", "id", "secret", 250)
        with pytest.raises(GmailTransientError):
            await gmail.get_profile(GmailCredentials("token", "refresh"))


async def test_token_bucket_pacer_spaces_calls_per_mailbox() -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    pacer = TokenBucketPacer(10, burst_s=0.5, clock=lambda: now[0], sleep=fake_sleep)
    await pacer.acquire("a", 5)  # the burst (5 units) covers this one
    await pacer.acquire("a", 5)  # 5 units of debt: half a second
    await pacer.acquire("b", 5)  # another mailbox has its own bucket
    assert slept == [0.5]
    now[0] += 2.0
    await pacer.acquire("a", 1)
    assert slept == [0.5]


async def test_retry_after_is_honored() -> None:
    # Gmail sometimes says how long to wait; the sandbox never does, so a stub server says it.
    answers = [
        web.json_response(
            {"error": {"code": 429, "errors": [{"reason": "rateLimitExceeded"}]}},
            status=429,
            headers={"Retry-After": "7"},
        ),
        web.json_response({"emailAddress": EMAIL, "historyId": "12", "messagesTotal": 3}),
    ]

    async def profile(request: web.Request) -> web.Response:
        return answers.pop(0)

    app = web.Application()
    app.router.add_get("/gmail/v1/users/me/profile", profile)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    try:
        host, port = runner.addresses[0][:2]
        base = f"http://{host}:{port}"
        async with aiohttp.ClientSession() as session:
            gmail = GmailHttpClient(
                session, base, f"{base}/token", "id", "secret", 1e6, sleep=fake_sleep
            )
            profile_ = await gmail.get_profile(GmailCredentials("token", "refresh"))
    finally:
        await runner.cleanup()
    assert profile_.history_id == 12
    assert slept == [7.0]
