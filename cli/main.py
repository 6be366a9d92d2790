"""`longtasks <verb>`: each verb reads its settings from the environment (see README)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from settings import Settings


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from db.embedded import resolve_database_url
    from migrations.runner import upgrade

    upgrade(resolve_database_url(settings))
    print("migrations applied")
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from api.auth import issue_token
    from db.models import Role

    token = issue_token(
        settings.jwt_secret,
        business_id=args.business_id,
        role=Role(args.role),
        ttl_s=args.ttl or settings.jwt_ttl_s,
    )
    print(f"# bearer token for business {args.business_id}, role {args.role}", file=sys.stderr)
    print(token)
    return 0


def _api(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        timeout_graceful_shutdown=5,
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from worker import run_worker

    asyncio.run(run_worker(settings))
    return 0


def _sandbox(settings: Settings, args: argparse.Namespace) -> int:
    from sandbox.app import build_sandbox, start_sandbox

    async def serve() -> None:
        server = build_sandbox(
            latency_ms=settings.sandbox_whatsapp_latency_ms,
            failure_rate=settings.sandbox_whatsapp_failure_rate,
            rate_limit_per_s=settings.sandbox_whatsapp_rate_limit,
        )
        runner, port = await start_sandbox(server, settings.sandbox_host, settings.sandbox_port)
        print(f"sandbox providers on http://{settings.sandbox_host}:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(serve())
    return 0


def _temporal(settings: Settings, args: argparse.Namespace) -> NoReturn:
    from cli.processes import temporal_dev_command

    cmd = temporal_dev_command(settings, list(args.extra))
    os.execv(cmd[0], cmd)  # noqa: S606 - replaces this process with the Temporal dev server


def _dev(settings: Settings, args: argparse.Namespace) -> int:
    from cli.dev import run_dev

    return run_dev(settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="longtasks", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("dev", help="start everything on embedded defaults").set_defaults(fn=_dev)
    verbs.add_parser("api", help="serve the REST API and web page").set_defaults(fn=_api)
    verbs.add_parser("worker", help="run the Temporal worker").set_defaults(fn=_worker)
    temporal = verbs.add_parser("temporal", help="run the Temporal dev server")
    temporal.add_argument("extra", nargs=argparse.REMAINDER, help="more start-dev flags")
    temporal.set_defaults(fn=_temporal)
    verbs.add_parser("sandbox", help="serve the sandbox WhatsApp and Gmail APIs").set_defaults(
        fn=_sandbox
    )
    verbs.add_parser("migrate", help="apply database migrations").set_defaults(fn=_migrate)
    token = verbs.add_parser("token", help="print a bearer token")
    token.add_argument("--business-id", type=int, required=True)
    token.add_argument("--role", choices=["viewer", "operator", "admin"], required=True)
    token.add_argument("--ttl", type=int, default=None, help="seconds (default JWT_TTL_S)")
    token.set_defaults(fn=_token)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings()
    result: int = args.fn(settings, args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
