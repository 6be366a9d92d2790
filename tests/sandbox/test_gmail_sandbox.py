"""The Gmail sandbox over HTTP: its API shape, search, history, auth, quota, and that what it
generates is what `receipt_parsing` reads."""

from __future__ import annotations

import contextlib
import datetime
from collections import Counter
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from devtools.sandbox.gmail import GmailSandbox
from longtasks.receipt_parsing import MalformedReceipt, NotAReceipt, ParsedReceipt, parse_receipt

Client = TestClient[web.Request, web.Application]
EMAIL = "dana@example.com"
MESSAGES = "/gmail/v1/users/me/messages"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def running(sandbox: GmailSandbox) -> AsyncIterator[Client]:
    app = web.Application()
    sandbox.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        yield client


async def register(client: Client, email: str = EMAIL) -> dict[str, Any]:
    response = await client.post("/sandbox/gmail/accounts", json={"email": email})
    assert response.status == 201
    created: dict[str, Any] = await response.json()
    return created


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def get_json(
    client: Client, path: str, token: str, params: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await client.get(path, params=params or {}, headers=bearer(token))
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def list_all(client: Client, token: str, q: str = "", page_size: int = 500) -> list[str]:
    ids: list[str] = []
    page_token: str | None = None
    while True:
        params = {"maxResults": str(page_size), "q": q}
        if page_token:
            params["pageToken"] = page_token
        body = await get_json(client, MESSAGES, token, params)
        ids += [m["id"] for m in body.get("messages", [])]
        page_token = body.get("nextPageToken")
        if page_token is None:
            return ids


def assert_gmail_error(body: dict[str, Any], code: int, reason: str) -> None:
    assert body["error"]["code"] == code
    assert body["error"]["errors"][0]["reason"] == reason
    assert isinstance(body["error"]["message"], str)
    assert isinstance(body["error"]["status"], str)


def parse_or_error(message: dict[str, Any]) -> ParsedReceipt | NotAReceipt | MalformedReceipt:
    try:
        return parse_receipt(message)
    except MalformedReceipt as exc:
        return exc


async def test_first_500_messages_parse_as_the_generator_says() -> None:
    sandbox = GmailSandbox(quota_units_per_s=1e9)
    async with running(sandbox) as client:
        token = (await register(client))["access_token"]
        first = await get_json(client, MESSAGES, token, {"maxResults": "500"})
        ids = [m["id"] for m in first["messages"]]
        assert len(ids) == 500
        generated: Counter[str] = Counter()
        parsed: Counter[str] = Counter()
        codes: Counter[str] = Counter()
        currencies: Counter[str] = Counter()
        for message_id in ids:
            message = await get_json(client, f"{MESSAGES}/{message_id}", token)
            facts = sandbox.message_facts(EMAIL, message_id)
            generated[facts.kind] += 1
            result = parse_or_error(message)
            if isinstance(result, MalformedReceipt):
                parsed["malformed"] += 1
                assert result.code == facts.malformed_code, message_id
                codes[result.code] += 1
                continue
            if isinstance(result, NotAReceipt):
                parsed["newsletter"] += 1
                assert facts.kind == "newsletter", message_id
                continue
            parsed["receipt"] += 1
            assert facts.kind == "receipt", message_id
            assert result == ParsedReceipt(
                gmail_message_id=message_id,
                vendor=facts.vendor or "",
                amount=facts.amount or Decimal(-1),
                currency=facts.currency or "",
                issued_at=facts.issued_at or datetime.date.min,
                subject=facts.subject,
                attachments=facts.attachments,
            )
            currencies[result.currency] += 1

    assert parsed == generated
    assert generated["receipt"] > 300
    assert generated["newsletter"] > 30
    assert set(codes) == {"no_amount", "bad_date", "undecodable_body"}
    assert {"ILS", "USD", "EUR"} <= set(currencies)


async def test_listing_is_newest_first_paged_and_complete() -> None:
    sandbox = GmailSandbox(quota_units_per_s=1e9, mailbox_size=350)
    async with running(sandbox) as client:
        token = (await register(client))["access_token"]
        ids = await list_all(client, token, page_size=100)
        assert len(ids) == len(set(ids)) == 350
        first = await get_json(client, MESSAGES, token)
        assert len(first["messages"]) == 100  # the default page size
        assert isinstance(first["resultSizeEstimate"], int)
        stamps = []
        for message_id in ids[::35]:
            message = await get_json(client, f"{MESSAGES}/{message_id}", token)
            stamps.append(int(message["internalDate"]))
        assert stamps == sorted(stamps, reverse=True)


async def test_search_operators_match_a_brute_force_scan() -> None:
    sandbox = GmailSandbox(quota_units_per_s=1e9, mailbox_size=300)
    async with running(sandbox) as client:
        token = (await register(client))["access_token"]
        everything = await list_all(client, token)
        messages = {i: await get_json(client, f"{MESSAGES}/{i}", token) for i in everything}

        def header(message: dict[str, Any], name: str) -> str:
            return next(
                str(h["value"]) for h in message["payload"]["headers"] if h["name"].lower() == name
            )

        def files(message: dict[str, Any]) -> list[str]:
            return [p["filename"] for p in message["payload"].get("parts", []) if p["filename"]]

        def stamp(day: str) -> int:
            at = datetime.datetime.fromisoformat(day).replace(tzinfo=datetime.UTC)
            return int(at.timestamp() * 1000)

        cases: dict[str, Callable[[dict[str, Any]], bool]] = {
            "after:2024/09/01 before:2025-01-01": lambda m: (
                stamp("2024-09-01") <= int(m["internalDate"]) < stamp("2025-01-01")
            ),
            "from:wolt": lambda m: "wolt" in header(m, "from").lower(),
            "receipt": lambda m: "receipt" in header(m, "subject").lower(),
            "{קבלה receipt}": lambda m: any(
                w in header(m, "subject").lower() for w in ("קבלה", "receipt")
            ),
            "invoice OR חשבונית": lambda m: any(
                w in header(m, "subject").lower() for w in ("invoice", "חשבונית")
            ),
            "-from:wolt after:2025/03/01": lambda m: (
                "wolt" not in header(m, "from").lower()
                and int(m["internalDate"]) >= stamp("2025-03-01")
            ),
            "has:attachment": lambda m: bool(files(m)),
            "filename:pdf": lambda m: any(f.endswith(".pdf") for f in files(m)),
            'subject:"your receipt"': lambda m: "your receipt" in header(m, "subject").lower(),
            "in:inbox": lambda m: True,
        }
        for q, wanted in cases.items():
            expected = [i for i in everything if wanted(messages[i])]
            assert await list_all(client, token, q=q, page_size=40) == expected, q
            assert expected or q == "from:wolt", q

        bad = await client.get(MESSAGES, params={"q": "after:2024/13/45"}, headers=bearer(token))
        assert bad.status == 400
        assert_gmail_error(await bad.json(), 400, "invalidArgument")


async def test_same_seed_same_mailbox() -> None:
    one, two, other = (
        GmailSandbox(mailbox_size=50),
        GmailSandbox(mailbox_size=50),
        GmailSandbox(mailbox_size=50, seed=8),
    )
    bodies = []
    for sandbox in (one, two, other):
        async with running(sandbox) as client:
            token = (await register(client))["access_token"]
            ids = await list_all(client, token)
            bodies.append([await get_json(client, f"{MESSAGES}/{i}", token) for i in ids[:10]])
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


async def test_message_formats_attachments_and_missing_messages() -> None:
    sandbox = GmailSandbox(mailbox_size=200)
    async with running(sandbox) as client:
        token = (await register(client))["access_token"]
        for message_id in await list_all(client, token):
            if sandbox.message_facts(EMAIL, message_id).attachments:
                break
        full = await get_json(client, f"{MESSAGES}/{message_id}", token)
        assert full["payload"]["mimeType"] == "multipart/mixed"
        pdf = next(p for p in full["payload"]["parts"] if p["filename"].endswith(".pdf"))
        attachment = await get_json(
            client, f"{MESSAGES}/{message_id}/attachments/{pdf['body']['attachmentId']}", token
        )
        assert attachment["size"] == pdf["body"]["size"]
        metadata = await get_json(client, f"{MESSAGES}/{message_id}", token, {"format": "metadata"})
        assert "parts" not in metadata["payload"]
        assert {h["name"] for h in metadata["payload"]["headers"]} >= {"From", "Subject", "Date"}
        minimal = await get_json(client, f"{MESSAGES}/{message_id}", token, {"format": "minimal"})
        assert "payload" not in minimal

        missing = await client.get(f"{MESSAGES}/{message_id[:6]}ffffffffff", headers=bearer(token))
        assert missing.status == 404
        assert_gmail_error(await missing.json(), 404, "notFound")
        garbage = await client.get(f"{MESSAGES}/not-an-id", headers=bearer(token))
        assert garbage.status == 400


async def test_history_lists_deliveries_and_expires() -> None:
    sandbox = GmailSandbox(mailbox_size=20, history_retention=8)
    async with running(sandbox) as client:
        token = (await register(client))["access_token"]
        profile = await get_json(client, "/gmail/v1/users/me/profile", token)
        assert profile["emailAddress"] == EMAIL
        assert profile["messagesTotal"] == 20
        start = profile["historyId"]

        empty = await get_json(
            client, "/gmail/v1/users/me/history", token, {"startHistoryId": start}
        )
        assert "history" not in empty
        assert empty["historyId"] == start

        response = await client.post(
            f"/sandbox/gmail/accounts/{EMAIL}/deliver", json={"count": 5, "kind": "receipt"}
        )
        delivered = await response.json()
        assert len(delivered["message_ids"]) == 5
        seen: list[str] = []
        page_token = None
        while True:
            params = {"startHistoryId": start, "maxResults": "2", "historyTypes": "messageAdded"}
            if page_token:
                params["pageToken"] = page_token
            page = await get_json(client, "/gmail/v1/users/me/history", token, params)
            for record in page.get("history", []):
                assert int(record["id"]) > int(start)
                seen += [added["message"]["id"] for added in record["messagesAdded"]]
            page_token = page.get("nextPageToken")
            if page_token is None:
                break
        assert seen == delivered["message_ids"]
        assert page["historyId"] == delivered["history_id"]
        for message_id in seen:
            assert sandbox.message_facts(EMAIL, message_id).kind == "receipt"
        listed = await list_all(client, token)
        assert listed[:5] == list(reversed(seen))

        # Beyond the retained window (8 records), an old start is gone.
        sandbox.deliver(EMAIL, 5)
        too_old = await client.get(
            "/gmail/v1/users/me/history", params={"startHistoryId": start}, headers=bearer(token)
        )
        assert too_old.status == 404
        assert_gmail_error(await too_old.json(), 404, "notFound")

        latest = (await get_json(client, "/gmail/v1/users/me/profile", token))["historyId"]
        await get_json(client, "/gmail/v1/users/me/history", token, {"startHistoryId": latest})
        expired = await client.post(f"/sandbox/gmail/accounts/{EMAIL}/expire_history")
        assert (await expired.json())["history_id"] == latest
        sandbox.deliver(EMAIL, 1)
        gone = await client.get(
            "/gmail/v1/users/me/history",
            params={"startHistoryId": str(int(latest) - 1)},
            headers=bearer(token),
        )
        assert gone.status == 404


async def test_tokens_refresh_expire_and_revoke() -> None:
    clock = FakeClock()
    sandbox = GmailSandbox(mailbox_size=10, clock=clock, access_token_ttl_s=60)
    async with running(sandbox) as client:
        created = await register(client)
        profile = "/gmail/v1/users/me/profile"
        missing = await client.get(profile)
        assert missing.status == 401
        assert "invalid_token" in missing.headers["WWW-Authenticate"]
        assert_gmail_error(await missing.json(), 401, "authError")

        clock.now += 61
        stale = await client.get(profile, headers=bearer(created["access_token"]))
        assert stale.status == 401

        form = {
            "grant_type": "refresh_token",
            "refresh_token": created["refresh_token"],
            "client_id": "id",
            "client_secret": "secret",
        }
        refreshed = await client.post("/oauth2/token", data=form)
        assert refreshed.status == 200
        grant = await refreshed.json()
        assert grant["token_type"] == "Bearer"
        assert grant["expires_in"] == 60
        assert (await get_json(client, profile, grant["access_token"]))["emailAddress"] == EMAIL

        other_user = await client.get(
            "/gmail/v1/users/someone@else.com/profile", headers=bearer(grant["access_token"])
        )
        assert other_user.status == 403
        await get_json(client, f"/gmail/v1/users/{EMAIL}/profile", grant["access_token"])

        expire = await client.post(f"/sandbox/gmail/accounts/{EMAIL}/expire_access_tokens")
        assert (await expire.json())["expired"] >= 1
        expired = await client.get(profile, headers=bearer(grant["access_token"]))
        assert expired.status == 401

        await client.post(f"/sandbox/gmail/accounts/{EMAIL}/revoke")
        revoked = await client.post("/oauth2/token", data=form)
        assert revoked.status == 400
        assert (await revoked.json())["error"] == "invalid_grant"

        unknown = await client.post("/oauth2/token", data={**form, "refresh_token": "nope"})
        assert (await unknown.json())["error"] == "invalid_grant"
        no_client = await client.post("/oauth2/token", data={**form, "client_secret": ""})
        assert no_client.status == 401
        assert (await no_client.json())["error"] == "invalid_client"

        # Dev mode: `sandbox:<email>` refresh tokens register themselves.
        dev = await client.post(
            "/oauth2/token", data={**form, "refresh_token": "sandbox:noa@example.com"}
        )
        assert dev.status == 200
        dev_token = (await dev.json())["access_token"]
        dev_profile = await get_json(client, profile, dev_token)
        assert dev_profile["emailAddress"] == "noa@example.com"

    stats = sandbox.stats()
    assert stats["token_refreshes"] == 2
    assert stats["token_errors"] == 3
    assert stats["auth_errors"] == 3


async def test_quota_is_a_token_bucket_per_account() -> None:
    clock = FakeClock()
    sandbox = GmailSandbox(mailbox_size=10, quota_units_per_s=10, clock=clock)
    async with running(sandbox) as client:
        token = (await register(client))["access_token"]
        other = (await register(client, "noa@example.com"))["access_token"]
        profile = "/gmail/v1/users/me/profile"
        for _ in range(10):  # one second of burst at 1 unit each
            await get_json(client, profile, token)
        limited = await client.get(profile, headers=bearer(token))
        assert limited.status == 429
        body = await limited.json()
        assert_gmail_error(body, 429, "rateLimitExceeded")
        assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
        await get_json(client, profile, other)  # another mailbox has its own bucket

        clock.now += 0.5
        for _ in range(5):
            await get_json(client, profile, token)

        await client.put("/sandbox/gmail/quota", json={"rate_limit_403_fraction": 1.0})
        forbidden = await client.get(profile, headers=bearer(token))
        assert forbidden.status == 403
        assert_gmail_error(await forbidden.json(), 403, "userRateLimitExceeded")

        await client.put("/sandbox/gmail/quota", json={"quota_units_per_s": 1000})
        clock.now += 1
        await get_json(client, MESSAGES, token)
        stats = await (await client.get("/sandbox/gmail/stats")).json()
    assert stats["quota_errors"] == 2
    assert stats["profile_calls"] == 18
    assert stats["list_calls"] == 1


async def test_messages_arrive_over_time_and_faults_inject_503() -> None:
    clock = FakeClock()
    sandbox = GmailSandbox(mailbox_size=10, new_messages_per_minute=60, clock=clock)
    async with running(sandbox) as client:
        token = (await register(client))["access_token"]
        profile = "/gmail/v1/users/me/profile"
        before = await get_json(client, profile, token)
        clock.now += 5
        after = await get_json(client, profile, token)
        assert after["messagesTotal"] == before["messagesTotal"] + 5
        assert int(after["historyId"]) > int(before["historyId"])
        history = await get_json(
            client, "/gmail/v1/users/me/history", token, {"startHistoryId": before["historyId"]}
        )
        assert len(history["history"]) == 5

        await client.put("/sandbox/gmail/faults", json={"server_error_rate": 1.0})
        failing = await client.get(profile, headers=bearer(token))
        assert failing.status == 503
        assert_gmail_error(await failing.json(), 503, "backendError")

        facts = await client.get(
            f"/sandbox/gmail/accounts/{EMAIL}/messages/{history['history'][0]['id']}/facts"
        )
        assert facts.status == 404
        first_id = history["history"][0]["messagesAdded"][0]["message"]["id"]
        facts = await client.get(f"/sandbox/gmail/accounts/{EMAIL}/messages/{first_id}/facts")
        assert (await facts.json())["message_id"] == first_id
        unknown = await client.post("/sandbox/gmail/accounts/who@nowhere.com/deliver")
        assert unknown.status == 404
    assert sandbox.stats()["server_errors"] == 1
