"""Outbound requests cannot reach inside: a business's webhook URL never gets a worker to connect
to a loopback, private, link-local, multicast or reserved address, whatever the name resolves to
and however the address is written, including after the DNS answer changes (rebinding).

Names are answered by a resolver of the test's own (the network edge: DNS), which says what real
DNS would for a hostile name: 127.0.0.1, ::1, 169.254.169.254, ::ffff:10.0.0.1, ... The
receivers are real HTTP servers on loopback; none of them may see a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiohttp.abc
import pytest
from aiohttp import web
from sqlalchemy import text

from longtasks.notifications.webhook import WebhookRejected, WebhookRetryable, post
from longtasks.outbound import OutboundPolicy, is_internal, literal_address_refused
from tests.conftest import (
    FaultReport,
    SecurityRow,
    Stack,
    _free_port,
    create_broadcast_task,
    israeli_numbers,
    running_worker,
    start_direct,
)

SECRET = "s3cret-for-the-ssrf-tests"


@dataclass
class Receiver:
    port: int
    # The local address each request came in on (which loopback address was reached).
    hits: list[str] = field(default_factory=list)
    status: int = 200
    body: bytes = b"ok"
    endless: bool = False


@contextlib.asynccontextmanager
async def receiver_on(*hosts: str) -> AsyncIterator[Receiver]:
    """One HTTP server on the same port of each loopback address given."""
    recv = Receiver(port=_free_port())

    async def hook(request: web.Request) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        recv.hits.append(str(sockname[0]) if sockname else "?")
        if recv.status in (301, 302, 307):
            raise web.HTTPFound(location=f"http://127.0.0.1:{recv.port}/redirected")
        if not recv.endless:
            return web.Response(status=recv.status, body=recv.body)
        response = web.StreamResponse(status=recv.status)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            while True:  # an answer that never ends
                await response.write(b"x" * 65536)
        return response

    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    for host in hosts:
        await web.TCPSite(runner, host, recv.port).start()
    try:
        yield recv
    finally:
        await runner.cleanup()


class TestResolver(aiohttp.abc.AbstractResolver):
    """DNS as a hostile name server would answer: `answers[name]` is a list of addresses, or a
    list of lists handed out in turn (a name whose answer changes: rebinding)."""

    __test__ = False

    def __init__(self, answers: dict[str, list[str] | list[list[str]]]) -> None:
        self.answers = answers
        self.asked: list[str] = []
        self._fallback = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        self.asked.append(host)
        answer = self.answers.get(host)
        if answer is None:  # numeric forms like 2130706433: what the system makes of them
            return await self._fallback.resolve(host, port, family)
        first = answer[0]
        if isinstance(first, list):
            turns: list[list[str]] = answer  # type: ignore[assignment]
            addresses = turns.pop(0) if len(turns) > 1 else turns[0]
        else:
            addresses = answer  # type: ignore[assignment]
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        await self._fallback.close()


HOSTILE_NAMES: dict[str, list[str]] = {
    "loopback.evil.test": ["127.0.0.1"],
    "loopback6.evil.test": ["::1"],
    "metadata.evil.test": ["169.254.169.254"],
    "mapped.evil.test": ["::ffff:10.0.0.1"],
    "mapped-loopback.evil.test": ["::ffff:127.0.0.1"],
    "private10.evil.test": ["10.0.0.5"],
    "private172.evil.test": ["172.16.3.4"],
    "private192.evil.test": ["192.168.1.1"],
    "cgnat.evil.test": ["100.64.0.1"],
    "unspecified.evil.test": ["0.0.0.0"],
    "multicast.evil.test": ["224.0.0.1"],
    "reserved.evil.test": ["240.0.0.1"],
    "broadcast.evil.test": ["255.255.255.255"],
    "nat64-loopback.evil.test": ["64:ff9b::7f00:1"],
    "6to4-loopback.evil.test": ["2002:7f00:1::1"],
    "ula.evil.test": ["fd00::1"],
    "linklocal6.evil.test": ["fe80::1"],
    "sitelocal6.evil.test": ["fec0::1"],
    "multicast6.evil.test": ["ff02::1"],
    "all-internal.evil.test": ["127.0.0.1", "::1", "10.1.2.3"],
}
# Literal forms, no name server involved (aiohttp does not ask a resolver for these; the
# numeric spellings go through the system's resolver, which reads them as 127.0.0.1).
LITERAL_FORMS = [
    "127.0.0.1",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[0:0:0:0:0:ffff:7f00:1]",
    "2130706433",
    "0x7f000001",
    "127.1",
    "0",
    "localhost",
]


async def deliver(url: str, policy: OutboundPolicy) -> None:
    await post(
        url,
        secret=SECRET,
        payload={"event": "task.finished"},
        idempotency_key="1:notify-webhook",
        timeout_s=5,
        policy=policy,
    )


async def test_names_resolving_inside_and_inside_addresses_are_refused(
    fault_report: FaultReport,
) -> None:
    answers: dict[str, list[str] | list[list[str]]] = dict(HOSTILE_NAMES)
    resolver = TestResolver(answers)
    refused: list[str] = []
    async with receiver_on("127.0.0.1", "::1") as recv:
        targets = [f"http://{name}:{recv.port}/hook" for name in HOSTILE_NAMES]
        targets += [f"http://{form}:{recv.port}/hook" for form in LITERAL_FORMS]
        by_parser = 0
        for url in targets:
            policy = OutboundPolicy.of([], resolver=resolver)
            with pytest.raises(WebhookRejected) as raised:
                await deliver(url, policy)
            if "not a valid URL" in str(raised.value):  # 2130706433, 0x7f000001: never sent
                by_parser += 1
            else:
                assert "not public" in str(raised.value), (url, raised.value)
                assert policy.refused, url
            refused.append(url)
        assert recv.hits == []
        # The control: the same receiver, allowed by configuration, is reached.
        await deliver(f"http://loopback.evil.test:{recv.port}/hook", OutboundPolicy.of(
            ["127.0.0.0/8"], resolver=resolver
        ))  # fmt: skip
        assert recv.hits == ["127.0.0.1"]
    await resolver.close()
    assert set(HOSTILE_NAMES) <= set(resolver.asked)
    fault_report.add_security(
        SecurityRow(
            area="SSRF",
            check="webhook targets: names resolving to "
            + ", ".join(sorted({a for v in HOSTILE_NAMES.values() for a in v}))
            + "; literal forms "
            + ", ".join(LITERAL_FORMS),
            cases=len(refused),
            outcome=f"all {len(refused)} refused before connecting ({by_parser} as invalid URLs);"
            " 0 requests reached a receiver",
        )
    )


async def test_a_name_that_rebinds_to_an_inside_address_is_refused_at_delivery(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    # 127.0.0.2 stands for "a public address" (the only one this policy allows).
    rebinding: dict[str, list[str] | list[list[str]]] = {
        "rebind.evil.test": [["127.0.0.2"], ["127.0.0.1"]],
        "mixed.evil.test": ["127.0.0.1", "10.0.0.1", "127.0.0.2"],
    }
    resolver = TestResolver(rebinding)
    allowed = ["127.0.0.2/32"]
    async with receiver_on("127.0.0.1", "127.0.0.2") as recv:
        url = f"http://rebind.evil.test:{recv.port}/hook"
        # Saving the URL: a name is not judged there (it could change); it is accepted.
        business_id = await new_business()
        async with stack.http(business_id, "admin") as http:
            saved = await http.put(
                "/api/notifications", json={"webhook_url": url, "webhook_secret": SECRET}
            )
            assert saved.status_code == 200, saved.text
        await deliver(url, OutboundPolicy.of(allowed, resolver=resolver))
        assert recv.hits == ["127.0.0.2"]
        # The name now answers 127.0.0.1: the next delivery is refused.
        policy = OutboundPolicy.of(allowed, resolver=resolver)
        with pytest.raises(WebhookRejected):
            await deliver(url, policy)
        assert policy.refused == ["127.0.0.1"]
        assert recv.hits == ["127.0.0.2"]
        # A name with inside and outside answers reaches the outside one only.
        policy = OutboundPolicy.of(allowed, resolver=resolver)
        await deliver(f"http://mixed.evil.test:{recv.port}/hook", policy)
        assert recv.hits == ["127.0.0.2", "127.0.0.2"]
        assert sorted(policy.refused) == ["10.0.0.1", "127.0.0.1"]
    await resolver.close()
    fault_report.add_security(
        SecurityRow(
            area="SSRF",
            check="DNS rebinding (public at save and first delivery, 127.0.0.1 later);"
            " a name with inside and outside answers",
            cases=3,
            outcome="the rebound delivery refused; the mixed name reached its outside address only",
        )
    )


async def test_no_redirect_is_followed_and_answers_are_read_up_to_a_cap() -> None:
    allow = OutboundPolicy.of(["127.0.0.0/8"])
    async with receiver_on("127.0.0.1") as recv:
        recv.status = 302
        with pytest.raises(WebhookRejected, match="302"):
            await deliver(f"http://127.0.0.1:{recv.port}/hook", allow)
        assert len(recv.hits) == 1  # the redirect's target was not asked
        # An answer that never ends: the delivery reads a capped amount and moves on, instead
        # of reading until the timeout.
        recv.status, recv.endless = 503, True
        with pytest.raises(WebhookRetryable, match=r"HTTP 503$"):
            await deliver(f"http://127.0.0.1:{recv.port}/hook", allow)


def test_address_classification_covers_the_ipv6_spellings_of_ipv4() -> None:
    import ipaddress

    inside = [
        "127.0.0.1", "10.0.0.1", "172.31.255.255", "192.168.0.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.0.8",
        "198.18.0.1", "::1", "::", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::10.0.0.1",
        "64:ff9b::a00:1", "64:ff9b:1::1", "2002:a00:1::", "2001::1", "fd12::1", "fe80::1",
        "fec0::1", "ff02::1",
    ]  # fmt: skip
    outside = ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
    for value in inside:
        assert is_internal(ipaddress.ip_address(value)), value
    for value in outside:
        assert not is_internal(ipaddress.ip_address(value)), value
    policy = OutboundPolicy.of([])
    assert literal_address_refused("[::ffff:127.0.0.1]", policy)
    assert literal_address_refused("LOCALHOST.", policy)
    assert not literal_address_refused("hooks.example.com", policy)


async def test_a_worker_refuses_an_inside_webhook_and_the_task_still_completes(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """End to end with the system's own resolver: `localhost` and literal inside addresses saved
    behind the API's back (as if its check had been got round) are refused by the worker."""
    queue, settings = stack.own_queue("ssrf", outbound_allowed_networks=[])
    async with (
        receiver_on("127.0.0.1") as recv,
        running_worker(stack.client, settings, stack.app_engine, queue),
    ):
        for url in (
            f"http://localhost:{recv.port}/hook",
            f"http://[::ffff:127.0.0.1]:{recv.port}/hook",
        ):
            business_id = await new_business()
            await _save_config_directly(stack, business_id, url)
            task_id = await create_broadcast_task(stack.engine, business_id, israeli_numbers(2))
            handle = await start_direct(stack.client, stack.engine, queue, business_id, task_id)
            await handle.result()
            async with stack.engine.connect() as conn:
                row = (
                    await conn.execute(
                        text(
                            "SELECT outcome, detail FROM notification_deliveries WHERE task_id = :t"
                        ),
                        {"t": task_id},
                    )
                ).one()
            assert row.outcome == "rejected", row
            assert "not public" in row.detail
        assert recv.hits == []


async def _save_config_directly(stack: Stack, business_id: int, url: str) -> None:
    from longtasks.notifications import secrets

    async with stack.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO notification_settings (business_id, webhook_url,"
                " webhook_secret_encrypted) VALUES (:b, :u, :s)"
            ),
            {"b": business_id, "u": url, "s": secrets.encrypt(stack.settings, SECRET)},
        )


async def test_the_api_refuses_inside_literal_addresses_when_a_url_is_saved(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    from tests.security.conftest import dedicated_api

    business_id = await new_business()
    token = stack.token(business_id, "admin")
    async with (
        dedicated_api(stack, outbound_allowed_networks=[]) as base_url,
        aiohttp.ClientSession(base_url, headers={"Authorization": f"Bearer {token}"}) as http,
    ):
        for host in ("127.0.0.1", "[::1]", "169.254.169.254", "[::ffff:10.0.0.1]", "localhost"):
            body: dict[str, Any] = {"webhook_url": f"http://{host}/x", "webhook_secret": SECRET}
            async with http.put("/api/notifications", json=body) as response:
                assert response.status == 422, host
        body = {"webhook_url": "https://hooks.example.com/x", "webhook_secret": SECRET}
        async with http.put("/api/notifications", json=body) as response:
            assert response.status == 200
    await asyncio.sleep(0)
