"""`longtasks schedules`: the project's Temporal Schedules, whoever created them.

A schedule is the project's when the workflow it starts is one this worker runs (the daily
cleanup, per-business Gmail syncs, ...), so other tenants of a shared namespace stay out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from temporalio import workflow
from temporalio.client import Client


@dataclass(frozen=True)
class ScheduleRow:
    id: str
    workflow: str
    paused: bool
    next_run: str
    last_run: str
    note: str


def workflow_names(classes: Iterable[type]) -> set[str]:
    """The registered names of workflow classes (`@workflow.defn(name=...)`)."""
    names = {workflow._Definition.must_from_class(cls).name for cls in classes}
    return {n for n in names if n is not None}


async def list_schedules(client: Client, workflow_names: Iterable[str]) -> list[ScheduleRow]:
    names = set(workflow_names)
    rows: list[ScheduleRow] = []
    async for entry in await client.list_schedules():
        schedule = entry.schedule
        workflow = getattr(schedule.action, "workflow", "") if schedule is not None else ""
        if workflow not in names:
            continue
        state = schedule.state if schedule is not None else None
        next_times = entry.info.next_action_times if entry.info is not None else []
        recent = entry.info.recent_actions if entry.info is not None else []
        rows.append(
            ScheduleRow(
                id=entry.id,
                workflow=workflow,
                paused=bool(state and state.paused),
                next_run=f"{min(next_times):%Y-%m-%d %H:%M} UTC" if next_times else "-",
                last_run=f"{recent[-1].started_at:%Y-%m-%d %H:%M} UTC" if recent else "-",
                note=(state.note or "") if state is not None else "",
            )
        )
    return sorted(rows, key=lambda r: r.id)


def format_rows(rows: list[ScheduleRow]) -> str:
    header = ("ID", "WORKFLOW", "STATE", "NEXT RUN", "LAST RUN", "NOTE")
    table = [header] + [
        (r.id, r.workflow, "paused" if r.paused else "active", r.next_run, r.last_run, r.note)
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
        + "  "
        + row[-1]
        for row in table
    ]
    return "\n".join(line.rstrip() for line in lines)
