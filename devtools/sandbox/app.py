"""The sandbox providers' HTTP server (`longtasks sandbox`): WhatsApp and Gmail on one port.

Control endpoints, for tests, benchmarks and curious developers:
- `GET /sandbox/stats` -> `{"whatsapp": {"accepted", "duplicates", ...}, "gmail": {...}}`
- `POST /sandbox/config` `{"whatsapp": {...settings}, "sender": "<phone number id>"?,
  "webhook": {"url", "app_secret"}?}`
- `POST /sandbox/reset`
- `GET /sandbox/whatsapp/messages?to=<number>[&sender=<id>]`,
  `GET /sandbox/whatsapp/senders/<id>`, `POST /sandbox/whatsapp/inbound`
  (see `devtools.sandbox.whatsapp`)
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from aiohttp import web

from devtools.sandbox.gmail import GmailSandbox
from devtools.sandbox.whatsapp import WhatsAppSandbox, WhatsAppSandboxConfig
from longtasks.settings import Settings


class SandboxServer:
    def __init__(self, whatsapp: WhatsAppSandbox, gmail: Any | None = None) -> None:
        self.whatsapp = whatsapp
        self.gmail = gmail

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_get("/sandbox/stats", self._stats)
        app.router.add_post("/sandbox/config", self._config)
        app.router.add_post("/sandbox/reset", self._reset)
        app.router.add_get("/sandbox/healthz", self._health)
        if self.gmail is not None:
            self.gmail.add_routes(app)
        self.whatsapp.add_routes(app)
        return app

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"whatsapp": self.whatsapp.stats_json()}
        if self.gmail is not None:
            out["gmail"] = self.gmail.stats()
        return out

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _config(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            config = self.whatsapp.update_config(
                body.get("whatsapp", {}), sender=body.get("sender")
            )
            webhook = self.whatsapp.update_webhook(body.get("webhook", {}))
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"whatsapp": config.__dict__, "webhook": webhook})

    async def _reset(self, request: web.Request) -> web.Response:
        self.whatsapp.reset()
        return web.json_response({"ok": True})


def build_sandbox(
    *,
    whatsapp_config: WhatsAppSandboxConfig | None = None,
    webhook_url: str | None = None,
    app_secret: str = "sandbox-app-secret",  # noqa: S107
    with_gmail: bool = True,
    gmail_mailbox_size: int = 2000,
    gmail_quota_units_per_s: float = 250.0,
) -> SandboxServer:
    whatsapp = WhatsAppSandbox(
        whatsapp_config or WhatsAppSandboxConfig(), webhook_url=webhook_url, app_secret=app_secret
    )
    gmail = (
        GmailSandbox(mailbox_size=gmail_mailbox_size, quota_units_per_s=gmail_quota_units_per_s)
        if with_gmail
        else None
    )
    return SandboxServer(whatsapp, gmail)


def sandbox_whatsapp_config(settings: Settings) -> WhatsAppSandboxConfig:
    return WhatsAppSandboxConfig(
        latency_ms=settings.sandbox_whatsapp_latency_ms,
        failure_rate=settings.sandbox_whatsapp_failure_rate,
        rate_limit_per_s=settings.sandbox_whatsapp_rate_limit,
        lost_response_rate=settings.sandbox_whatsapp_lost_response_rate,
        status_delay_ms=settings.sandbox_whatsapp_status_delay_ms,
        async_failure_rate=settings.sandbox_whatsapp_async_failure_rate,
        read_rate=settings.sandbox_whatsapp_read_rate,
        webhook_drop_rate=settings.sandbox_whatsapp_webhook_drop_rate,
    )


async def start_sandbox(server: SandboxServer, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve on host:port (0 picks a free port); returns the runner and the bound port."""
    runner = web.AppRunner(server.make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    addresses = runner.addresses  # the bound (host, port) pairs, port 0 resolved
    bound = addresses[0][1] if addresses else port
    return runner, int(bound)


async def serve_until_stopped(settings: Settings) -> None:
    """`longtasks sandbox`: serve on SANDBOX_HOST:SANDBOX_PORT until SIGINT or SIGTERM."""
    server = build_sandbox(
        whatsapp_config=sandbox_whatsapp_config(settings),
        webhook_url=settings.whatsapp_webhook_endpoint,
        app_secret=settings.whatsapp_app_secret,
        gmail_mailbox_size=settings.sandbox_gmail_mailbox_size,
        gmail_quota_units_per_s=settings.sandbox_gmail_quota_units_per_s,
    )
    runner, port = await start_sandbox(server, settings.sandbox_host, settings.sandbox_port)
    print(f"sandbox providers on http://{settings.sandbox_host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
