"""The built-in registry: every activity name has exactly one implementation, every task type
of the domain is registered, and an entry that contradicts itself is refused."""

from __future__ import annotations

import dataclasses
from collections import Counter

import aiohttp
import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from longtasks.contracts import activities as act
from longtasks.db.engine import create_engine
from longtasks.domain import TaskType
from task_types import BUILTIN
from task_types.broadcast import BROADCAST
from task_types.registry import Registry, TaskTypeSpec, WorkerContext, WorkerDeps, workflow_name
from tests.conftest import settings_for_tests
from tests.task_types.toy import TOY_TYPE
from worker import whatsapp_client
from workflows.receipts import ReceiptDeleteWorkflow


async def test_the_worker_implements_every_named_activity_once(
    temporal_env: WorkflowEnvironment,
) -> None:
    settings = settings_for_tests("postgresql+psycopg://nobody@127.0.0.1:1/none", "http://x")
    # Built, never connected: the factories only construct their activity objects.
    engine = create_engine(settings.require_database_url(), pool_size=1)
    async with aiohttp.ClientSession() as session:
        context = WorkerContext(
            deps=WorkerDeps(engine=engine, whatsapp=whatsapp_client(settings, session)),
            settings=settings,
            client=temporal_env.client,
            task_queue="unused",
        )
        registered = [
            activity._Definition.must_from_callable(fn).name for fn in BUILTIN.activities(context)
        ]
    await engine.dispose()
    assert Counter(registered).most_common(1)[0][1] == 1, "each name registered once"
    assert set(registered) == {name.name for name in act.all_names()}


def test_every_domain_task_type_is_registered_under_its_workflow_name() -> None:
    assert BUILTIN.type_names == list(TaskType)
    for spec in BUILTIN.task_types:
        assert workflow_name(spec.workflow) == spec.name
    names = [workflow_name(cls) for cls in BUILTIN.workflows()]
    assert sorted(names) == sorted([*TaskType, "cleanup", "receipt_sync_kick"])


def test_an_entry_whose_workflow_has_another_name_is_refused() -> None:
    with pytest.raises(ValueError, match="registered as 'receipt_delete'"):
        TaskTypeSpec(
            name="broadcast",
            workflow=ReceiptDeleteWorkflow,
            activities=BROADCAST.activities,
            page_size=BROADCAST.page_size,
        )
    with pytest.raises(ValueError, match="registered twice: broadcast"):
        Registry(task_types=[BROADCAST, BROADCAST])


def test_the_types_whose_eta_sending_limits_bound_are_the_registrys() -> None:
    # api.task_views asks the registry, so a new type that sends messages says so in its entry.
    assert BUILTIN.sending_type_names == {TaskType.broadcast}
    sending_toy = dataclasses.replace(TOY_TYPE, sends_messages=True)
    assert BUILTIN.with_task_types(sending_toy).sending_type_names == {
        TaskType.broadcast,
        TOY_TYPE.name,
    }
    assert TOY_TYPE.name not in BUILTIN.with_task_types(TOY_TYPE).sending_type_names
