"""The `notify-on-finish` patch: histories from before it replay, histories after it show it.

The path every change to a deployed workflow takes (README "Changing a workflow safely"):
1. guard the new commands with `workflow.patched("<id>")`;
2. replay the histories stored before the change (tests/histories/*, in test_replay.py too);
3. record a history with the change and store it, so the next change must replay it as well.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from task_types import BUILTIN
from workflows.page_loop import NOTIFY_PATCH

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
PATCHED = HISTORIES / "broadcast-notified-run0.json"
# Broadcast histories recorded after the patch (they carry its marker): the notify test's, and
# those of runs that paused, waited for an approval or expired (issue 14).
AFTER = [PATCHED] + [
    HISTORIES / f"broadcast-{name}-run0.json"
    for name in ("paused-resumed", "approved", "approval-expired")
]
BEFORE = sorted(p for p in HISTORIES.glob("broadcast-*.json") if p not in AFTER)


def _patch_ids(path: Path) -> list[str]:
    """Patch ids recorded in a history's markers."""
    ids: list[str] = []
    for event in json.loads(path.read_text())["events"]:
        attributes = event.get("markerRecordedEventAttributes")
        if not attributes or attributes.get("markerName") != "core_patch":
            continue
        payloads = attributes.get("details", {}).get("patch-data", {}).get("payloads", [])
        for payload in payloads:
            data = json.loads(base64.b64decode(payload["data"]))
            ids.append(str(data.get("id")))
    return ids


def _activities(path: Path) -> list[str]:
    return [
        e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for e in json.loads(path.read_text())["events"]
        if "activityTaskScheduledEventAttributes" in e
    ]


def _load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"longtask-{path.stem}", path.read_text())


@pytest.mark.parametrize("path", BEFORE, ids=str)
async def test_histories_from_before_the_patch_replay_without_it(path: Path) -> None:
    assert NOTIFY_PATCH not in _patch_ids(path)
    assert "tasks.notify_finished" not in _activities(path)
    result = await Replayer(workflows=BUILTIN.workflows()).replay_workflow(
        _load(path), raise_on_replay_failure=False
    )
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


async def test_a_history_after_the_patch_has_its_marker_and_replays() -> None:
    assert PATCHED.exists(), (
        "record it: LONGTASKS_RECORD_HISTORIES=1 pytest tests/ops/test_notifications.py -k signed"
    )
    assert NOTIFY_PATCH in _patch_ids(PATCHED)
    activities = _activities(PATCHED)
    assert activities[-2:] == ["tasks.finish", "tasks.notify_finished"]
    result = await Replayer(workflows=BUILTIN.workflows()).replay_workflow(
        _load(PATCHED), raise_on_replay_failure=False
    )
    assert result.replay_failure is None, str(result.replay_failure)


@pytest.mark.parametrize("path", AFTER[1:], ids=str)
async def test_later_histories_take_the_patched_path(path: Path) -> None:
    assert NOTIFY_PATCH in _patch_ids(path)
    assert _activities(path)[-1] == "tasks.notify_finished"
    result = await Replayer(workflows=BUILTIN.workflows()).replay_workflow(
        _load(path), raise_on_replay_failure=False
    )
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
