"""Replay stored histories against today's workflow code, on every run of the suite.

A change to a workflow that alters its command sequence for runs already in flight fails here
before it is deployed. Record new histories with `LONGTASKS_RECORD_HISTORIES=1 make test`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from task_types import BUILTIN
from tests.workflows.careless_change import BroadcastWithAnExtraStep

HISTORIES = sorted((Path(__file__).resolve().parent.parent / "histories").glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"longtask-{path.stem}", path.read_text())


def test_histories_are_stored() -> None:
    names = {p.name for p in HISTORIES}
    assert "broadcast-completed-run0.json" in names
    assert "broadcast-cancelled-rest-run0.json" in names
    assert "broadcast-cancelled-temporal-run0.json" in names
    assert sum(n.startswith("broadcast-continued-as-new") for n in names) >= 2
    for receipts in ("sync-full", "sync-incremental", "sync-cancelled"):
        assert f"receipt_{receipts}-run0.json" in names
    for receipts in ("delete-by-ids", "delete-cancelled"):
        assert f"receipt_{receipts}-run0.json" in names
    # Pause and resume, an approval, an expiry (issue 14: signals and waits of their own).
    for controls in ("paused-resumed", "approved", "approval-expired"):
        assert f"broadcast-{controls}-run0.json" in names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_stored_history_replays_deterministically(path: Path) -> None:
    replayer = Replayer(workflows=BUILTIN.workflows())
    result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


async def test_a_non_deterministic_change_is_caught() -> None:
    replayer = Replayer(workflows=[BroadcastWithAnExtraStep])
    history = load(next(p for p in HISTORIES if p.name == "broadcast-completed-run0.json"))
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(history)
