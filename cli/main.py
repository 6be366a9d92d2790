"""`longtasks <verb>`: each verb reads its settings from the environment (see README)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from pydantic import ValidationError

from cli.checkout import dev_tool, with_database
from longtasks.domain import Priority, Role, TaskStatus, TaskType
from longtasks.settings import Settings


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from migrations.roles import UnsafeAppRole
    from migrations.runner import migrate

    settings = with_database(settings, "migrate")
    app_url = settings.require_database_url()
    try:
        for line in migrate(settings.migration_database_url or app_url, app_url, args.to):
            print(line)
    except (ValueError, UnsafeAppRole) as exc:
        print(f"longtasks: {exc}", file=sys.stderr)
        return 2
    return 0


def _rotate_keys(settings: Settings, args: argparse.Namespace) -> int:
    from cli.rotate_keys import run

    # Every business's rows: a cross-business path, run as the owner.
    settings = with_database(settings, "rotate-keys")
    return run(settings, settings.migration_database_url or settings.require_database_url())


def _token(settings: Settings, args: argparse.Namespace) -> int:
    import jwt

    from longtasks.auth.tokens import TokenSigner, default_subject, issue_token

    if args.key:
        if not args.kid:
            print("longtasks: --key needs --kid (the key id the API knows it by)", file=sys.stderr)
            return 2
        with open(args.key, "rb") as pem:
            signer = TokenSigner.from_private_pem(pem.read(), args.kid)
    else:
        signer = TokenSigner.hs256(settings.jwt_secret)
    ttl = args.ttl or settings.jwt_ttl_s
    if ttl > settings.jwt_max_lifetime_s:
        limit = settings.jwt_max_lifetime_s
        print(f"longtasks: --ttl over JWT_MAX_LIFETIME_S ({limit})", file=sys.stderr)
        return 2
    subject = args.user or default_subject(args.business_id, Role(args.role))
    token = issue_token(
        signer,
        business_id=args.business_id,
        role=Role(args.role),
        subject=subject,
        ttl_s=ttl,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    print(
        f"# bearer token for business {args.business_id}, role {args.role}, user {subject},"
        f" jti {jti}",
        file=sys.stderr,
    )
    print(token)
    return 0


def _api(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from longtasks.observability.logs import configure_logging
    from longtasks.observability.tracing import setup_tracing

    settings = with_database(settings, "api")
    configure_logging(settings)
    setup_tracing(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        log_config=None,  # configure_logging owns the handlers (JSON outside development)
        timeout_graceful_shutdown=5,
    )
    return 0


def _schedules(settings: Settings, args: argparse.Namespace) -> int:
    from longtasks.temporal.client import connect
    from longtasks.temporal.schedule_list import format_rows, list_schedules, workflow_names
    from task_types import BUILTIN

    async def show() -> None:
        client = await connect(settings)
        print(format_rows(await list_schedules(client, workflow_names(BUILTIN.workflows()))))

    asyncio.run(show())
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from worker import main

    main(with_database(settings, "worker"))


def _sandbox(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(dev_tool("devtools.sandbox.app", "sandbox").serve_until_stopped(settings))
    return 0


def _temporal(settings: Settings, args: argparse.Namespace) -> NoReturn:
    processes = dev_tool("devtools.dev.processes", "temporal")
    cmd: list[str] = processes.temporal_dev_command(settings, list(args.extra))
    os.execv(cmd[0], cmd)  # noqa: S606 - replaces this process with the Temporal dev server


def _dev(settings: Settings, args: argparse.Namespace) -> int:
    code: int = dev_tool("devtools.dev.run", "dev").run_dev(settings)
    return code


def _broadcast(settings: Settings, args: argparse.Namespace) -> int:
    from cli.verbs import run_broadcast

    return run_broadcast(args)


def _tasks(settings: Settings, args: argparse.Namespace) -> int:
    from cli.verbs import run_tasks

    return run_tasks(args)


def _watch(settings: Settings, args: argparse.Namespace) -> int:
    from cli.verbs import run_watch

    return run_watch(args)


def _cancel(settings: Settings, args: argparse.Namespace) -> int:
    from cli.verbs import run_cancel

    return run_cancel(args)


def _control(settings: Settings, args: argparse.Namespace) -> int:
    from cli.verbs import run_control

    return run_control(args)


def _retry_failed(settings: Settings, args: argparse.Namespace) -> int:
    from cli.verbs import run_retry_failed

    return run_retry_failed(args)


def _policy(settings: Settings, args: argparse.Namespace) -> int:
    from cli.verbs import run_policy

    return run_policy(args)


def _count_or_off(text: str) -> int | None:
    """A policy limit: a whole number, or `off` for none."""
    if text.lower() in ("off", "none"):
        return None
    try:
        return int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number, or off") from None


def _share_or_off(text: str) -> float | None:
    """A failure share: 0.5 or 50%, or `off` for no auto-pause."""
    if text.lower() in ("off", "none"):
        return None
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a share (0.5 or 50%), or off") from None


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
    migrate = verbs.add_parser("migrate", help="apply database migrations (or roll them back)")
    migrate.add_argument(
        "--to", default="head", metavar="REVISION", help="head (default), base, or a revision"
    )
    migrate.set_defaults(fn=_migrate)
    verbs.add_parser(
        "rotate-keys",
        help="re-encrypt stored OAuth tokens and webhook secrets with the newest ENCRYPTION_KEY",
    ).set_defaults(fn=_rotate_keys)
    verbs.add_parser(
        "schedules", help="list the project's Temporal Schedules (cleanup, Gmail syncs)"
    ).set_defaults(fn=_schedules)
    token = verbs.add_parser("token", help="print a bearer token")
    token.add_argument("--business-id", type=int, required=True)
    token.add_argument("--role", choices=list(Role), required=True)
    token.add_argument("--ttl", type=int, default=None, help="seconds (default JWT_TTL_S)")
    token.add_argument(
        "--user",
        default=None,
        help="the caller's stable identity (`sub`), recorded as a task's creator, pauser and"
        " approver and in the audit log (default: business:N:ROLE)",
    )
    token.add_argument("--key", metavar="PEM", help="sign with this private key (RS/ES/EdDSA)")
    token.add_argument("--kid", help="the key's id, as configured in JWT_PUBLIC_KEYS")
    token.set_defaults(fn=_token)

    # Client verbs: talk to the REST API at LONGTASKS_API with the token in LONGTASKS_TOKEN.
    broadcast = verbs.add_parser("broadcast", help="start a WhatsApp broadcast from a CSV")
    broadcast.add_argument(
        "--recipients",
        required=True,
        metavar="FILE",
        help="CSV (first column, or the column named phone/טלפון) or one"
        " number a line; - reads stdin",
    )
    message = broadcast.add_mutually_exclusive_group(required=True)
    message.add_argument("--text", help="the message text")
    message.add_argument("--template", metavar="NAME", help="an approved WhatsApp template")
    broadcast.add_argument("--language", metavar="CODE", help="the template's language (he)")
    broadcast.add_argument(
        "--param", action="append", metavar="P", help="a template parameter (repeat, in order)"
    )
    broadcast.add_argument("--name", help="the broadcast's name (default: the file's name)")
    broadcast.add_argument(
        "--start-at", metavar="ISO", help="start later, e.g. 2026-12-01T09:00:00+02:00"
    )
    broadcast.add_argument("--priority", choices=list(Priority), help="default normal")
    broadcast.add_argument("--follow", action="store_true", help="then watch it to the end")
    broadcast.set_defaults(fn=_broadcast)
    tasks = verbs.add_parser("tasks", help="list the business's tasks")
    tasks.add_argument("--type", choices=list(TaskType))
    tasks.add_argument("--status", choices=list(TaskStatus))
    tasks.add_argument("--limit", type=int, default=50, help="per page, 1-500 (default 50)")
    tasks.add_argument("--all", action="store_true", help="follow every page")
    tasks.set_defaults(fn=_tasks)
    watch = verbs.add_parser("watch", help="follow a task's progress (Ctrl-C to cancel it)")
    watch.add_argument("task_id", type=int, metavar="ID")
    watch.set_defaults(fn=_watch)
    cancel = verbs.add_parser("cancel", help="cancel a task")
    cancel.add_argument("task_id", type=int, metavar="ID")
    cancel.add_argument("--reason", metavar="TEXT", help="recorded with the task")
    cancel.set_defaults(fn=_cancel)
    for verb, what in (
        ("pause", "pause a task: nothing new starts, items in flight settle"),
        ("resume", "resume a paused task where it stopped"),
        ("approve", "approve a task that waits for approval (admin; not its creator)"),
        ("reject", "reject a task that waits for approval (admin): nothing is sent"),
    ):
        control = verbs.add_parser(verb, help=what)
        control.add_argument("task_id", type=int, metavar="ID")
        if verb == "reject":
            control.add_argument("--reason", metavar="TEXT", help="recorded with the task")
        control.set_defaults(fn=_control)
    retry = verbs.add_parser(
        "retry-failed", help="a new task for a finished task's failed items (not invalid numbers)"
    )
    retry.add_argument("task_id", type=int, metavar="ID")
    retry.add_argument(
        "--code", action="append", metavar="CODE", help="only items that failed so (repeat)"
    )
    retry.add_argument("--follow", action="store_true", help="then watch it to the end")
    retry.set_defaults(fn=_retry_failed)
    policy = verbs.add_parser(
        "policy", help="show the business's policy; change it with the flags (admin)"
    )
    # Left out, a flag is absent (SUPPRESS), so the field keeps its value; `off` sends null.
    policy.add_argument(
        "--approval-required-above",
        dest="approval_required_above",
        type=_count_or_off,
        default=argparse.SUPPRESS,
        metavar="N|off",
        help="a broadcast to more valid recipients waits for an admin's approval",
    )
    policy.add_argument(
        "--daily-send-cap",
        dest="daily_send_cap",
        type=_count_or_off,
        default=argparse.SUPPRESS,
        metavar="N|off",
        help="messages per UTC day across the business's tasks; over it they wait",
    )
    policy.add_argument(
        "--auto-pause-share",
        dest="auto_pause_failure_share",
        type=_share_or_off,
        default=argparse.SUPPRESS,
        metavar="F|off",
        help="a task pauses itself once this share of its recent answers failed (0.5, 50%%)",
    )
    policy.add_argument(
        "--auto-pause-window",
        dest="auto_pause_window",
        type=int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="how many recent answers that share is taken over (10-10,000)",
    )
    policy.set_defaults(fn=_policy)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings()
    except ValidationError as exc:  # e.g. placeholder secrets in production: say which, exit 2
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        print(f"longtasks: invalid settings: {problems}", file=sys.stderr)
        return 2
    result: int = args.fn(settings, args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
