"""The client verbs, `broadcast`, `tasks`, `watch`, `cancel`, `pause`, `resume`, `approve`,
`reject` and `retry-failed`, over the REST API.

Each builds its client from the environment (`cli.rest`), prints a CliError as one line and
exits with the codes in `cli.errors`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rich.text import Text

from cli.display import console, format_utc, styled_line
from cli.errors import EXIT_INTERRUPTED, EXIT_OK, CliError
from cli.recipients import read_recipients
from cli.rest import JSON, ApiClient, json_object
from cli.snapshot import RESUMING, Snapshot, parse_time
from cli.table import print_tasks
from cli.watch import watch_task
from longtasks.domain import TaskStatus, TaskType


@dataclass
class Streams:
    out: TextIO
    err: TextIO
    stdin: TextIO

    @classmethod
    def default(cls) -> Streams:
        return cls(sys.stdout, sys.stderr, sys.stdin)


def _run(body: Callable[[ApiClient, Streams], int], streams: Streams | None = None) -> int:
    """Builds the client from the environment, prints a CliError as one line."""
    streams = streams or Streams.default()
    # `longtasks` logs at INFO; httpx would log every request (one a second while polling).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        with ApiClient.from_env() as api:
            return body(api, streams)
    except CliError as exc:
        error = Text.assemble(("longtasks: error:", "bold red"), " ", exc.message)
        console(streams.err).print(error)
        streams.err.flush()
        return exc.exit_code
    except KeyboardInterrupt:
        streams.err.write("\ninterrupted\n")
        return EXIT_INTERRUPTED


def default_name(path: str) -> str:
    return "broadcast" if path == "-" else (Path(path).stem or "broadcast")


def broadcast_body(args: argparse.Namespace, recipients: Sequence[str]) -> JSON:
    """The `POST /api/broadcasts` body from the verb's flags."""
    params = list(args.param or [])
    if args.template is not None:
        if not args.language:
            raise CliError("--template needs --language (e.g. --language he)")
        message: JSON = {
            "template": {"name": args.template, "language": args.language, "params": params}
        }
    else:
        if args.language or params:
            raise CliError("--language and --param go with --template, not --text")
        message = {"text": args.text}
    body: JSON = {
        "name": args.name or default_name(args.recipients),
        "message": message,
        "recipients": list(recipients),
    }
    if args.start_at:
        body["start_at"] = args.start_at
    if args.priority:
        body["priority"] = args.priority
    return body


def broadcast(api: ApiClient, args: argparse.Namespace, streams: Streams) -> int:
    recipients = read_recipients(args.recipients, streams.stdin)
    body = broadcast_body(args, recipients)
    started = api.start_broadcast(body)
    task = json_object(started.get("task"))
    snapshot = Snapshot.from_json(task)
    streams.out.write(
        f"task {snapshot.id} {snapshot.status}: broadcast #{started.get('broadcast_id')}"
        f" {body['name']!r} to {len(recipients):,} rows:"
        f" {started.get('recipients_accepted', 0):,} accepted,"
        f" {started.get('recipients_invalid', 0):,} invalid,"
        f" {started.get('duplicates_dropped', 0):,} duplicates dropped\n"
    )
    if snapshot.start_at and snapshot.status in (
        TaskStatus.scheduled,
        TaskStatus.awaiting_approval,
    ):
        streams.out.write(f"starts at {format_utc(snapshot.start_at)}\n")
    if snapshot.status == TaskStatus.awaiting_approval:
        streams.out.write(_awaiting_approval(snapshot))
    streams.out.flush()
    if not args.follow:
        return EXIT_OK
    return watch_task(api, snapshot.id, out=streams.out, err=streams.err, stdin=streams.stdin)


def _awaiting_approval(snapshot: Snapshot) -> str:
    """What a task over the business's approval threshold waits for, and who can give it."""
    until = snapshot.approval_expires_at
    deadline = f" by {format_utc(until)}" if until else ""
    return (
        f"nothing is sent until an admin other than you approves it{deadline}:\n"
        f"  longtasks approve {snapshot.id}    (or: longtasks reject {snapshot.id})\n"
    )


def list_tasks(api: ApiClient, args: argparse.Namespace, streams: Streams) -> int:
    if not 1 <= args.limit <= 500:
        raise CliError("--limit must be between 1 and 500")
    tasks: list[JSON] = []
    cursor: str | None = None
    seen_cursors: set[str] = set()
    while True:
        page = api.list_tasks(
            task_type=TaskType(args.type) if args.type else None,
            status=TaskStatus(args.status) if args.status else None,
            limit=args.limit,
            cursor=cursor,
        )
        tasks.extend(json_object(item) for item in page.get("items") or [])
        next_cursor = page.get("next_cursor")
        if not args.all or not next_cursor or next_cursor in seen_cursors:
            break
        seen_cursors.add(next_cursor)
        cursor = str(next_cursor)
    if not tasks:
        streams.out.write("no tasks\n")
    else:
        print_tasks(streams.out, [Snapshot.from_json(task) for task in tasks])
        if not args.all and page.get("next_cursor"):
            streams.out.write(f"(first {len(tasks)} shown; --all for every task)\n")
    streams.out.flush()
    return EXIT_OK


def watch(api: ApiClient, args: argparse.Namespace, streams: Streams) -> int:
    return watch_task(api, args.task_id, out=streams.out, err=streams.err, stdin=streams.stdin)


def cancel(api: ApiClient, args: argparse.Namespace, streams: Streams) -> int:
    status, task = api.cancel_task(args.task_id, args.reason)
    snapshot = Snapshot.from_json(task)
    if status == 200 or snapshot.terminal:
        streams.out.write(f"task {snapshot.id} is {snapshot.status}; nothing to cancel\n")
    else:
        streams.out.write(
            f"task {snapshot.id}: cancel requested (`longtasks watch {snapshot.id}` to see it"
            " stop)\n"
        )
    console(streams.out).print(styled_line(snapshot))
    streams.out.flush()
    return EXIT_OK


# What a control verb says when the call changed the task (202) and when it already was so.
_CONTROL_WORDS = {
    "pause": ("pause requested: items in flight settle, then it waits", "was pausing already"),
    "resume": ("resumed: it goes on where it stopped", "was not paused"),
    "approve": ("approved: it starts now", "was approved already"),
    "reject": ("rejected: it ends with nothing sent", "was rejected already"),
}


def control(api: ApiClient, args: argparse.Namespace, streams: Streams) -> int:
    """`pause`, `resume`, `approve` or `reject` one task; the task's line after it."""
    verb = args.verb
    body = {"reason": args.reason} if getattr(args, "reason", None) else None
    status, task = api.control_task(args.task_id, verb, body)
    snapshot = Snapshot.from_json(task)
    changed, unchanged = _CONTROL_WORDS[verb]
    if verb == "approve" and snapshot.status == TaskStatus.scheduled and snapshot.start_at:
        changed = "approved: it starts at the time it was given"
    if verb == "resume" and snapshot.status == TaskStatus.paused and not snapshot.pause_requested:
        # Nobody paused it: it waits for a quota (the daily cap) and goes on by itself.
        unchanged = "was not paused by anyone: it goes on by itself when its wait ends"
    streams.out.write(f"task {snapshot.id}: {changed if status == 202 else unchanged}\n")
    # The answer comes before the run has heard of the resume: the task still says paused.
    resuming = verb == "resume" and status == 202 and snapshot.status == TaskStatus.paused
    console(streams.out).print(styled_line(snapshot, status=RESUMING if resuming else None))
    streams.out.flush()
    return EXIT_OK


def retry_failed(api: ApiClient, args: argparse.Namespace, streams: Streams) -> int:
    """A new task of the same type for the items that failed retryably; `--follow` watches it."""
    started = api.retry_failed(args.task_id, list(args.code) if args.code else None)
    snapshot = Snapshot.from_json(json_object(started.get("task")))
    streams.out.write(
        f"task {snapshot.id} retries {started.get('items', snapshot.total):,} failed items of"
        f" task {args.task_id}\n"
    )
    console(streams.out).print(styled_line(snapshot))
    streams.out.flush()
    if not args.follow:
        return EXIT_OK
    return watch_task(api, snapshot.id, out=streams.out, err=streams.err, stdin=streams.stdin)


# The policy's fields, in the API's words (README: "Controls"), and the flags that set them.
POLICY_FIELDS = (
    "approval_required_above",
    "daily_send_cap",
    "auto_pause_failure_share",
    "auto_pause_window",
)


def policy(api: ApiClient, args: argparse.Namespace, streams: Streams) -> int:
    """Shows the business's policy; with flags, changes those fields first (admin)."""
    # A flag left out is absent (argparse.SUPPRESS): the field keeps its value.
    changes = {field: getattr(args, field) for field in POLICY_FIELDS if hasattr(args, field)}
    current = api.policy(changes or None)
    width = max(map(len, POLICY_FIELDS))
    for field in POLICY_FIELDS:
        value = current.get(field)
        shown = "off" if value is None else f"{value:,}" if isinstance(value, int) else str(value)
        streams.out.write(f"{field:<{width}}  {shown}\n")
    if current.get("updated_by"):
        when = parse_time(current.get("updated_at"))
        at = f" at {format_utc(when)}" if when else ""
        streams.out.write(f"(last changed by {current['updated_by']}{at})\n")
    streams.out.flush()
    return EXIT_OK


def run_policy(args: argparse.Namespace, streams: Streams | None = None) -> int:
    return _run(lambda api, s: policy(api, args, s), streams)


def run_control(args: argparse.Namespace, streams: Streams | None = None) -> int:
    return _run(lambda api, s: control(api, args, s), streams)


def run_retry_failed(args: argparse.Namespace, streams: Streams | None = None) -> int:
    return _run(lambda api, s: retry_failed(api, args, s), streams)


def run_broadcast(args: argparse.Namespace, streams: Streams | None = None) -> int:
    return _run(lambda api, s: broadcast(api, args, s), streams)


def run_tasks(args: argparse.Namespace, streams: Streams | None = None) -> int:
    return _run(lambda api, s: list_tasks(api, args, s), streams)


def run_watch(args: argparse.Namespace, streams: Streams | None = None) -> int:
    return _run(lambda api, s: watch(api, args, s), streams)


def run_cancel(args: argparse.Namespace, streams: Streams | None = None) -> int:
    return _run(lambda api, s: cancel(api, args, s), streams)
