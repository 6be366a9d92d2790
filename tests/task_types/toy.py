"""A task type that lives in test code only: "shout" a list of words, one item per word.

Everything a task type brings, and nothing of the product changed for it: its workflow
(`toy_workflow.py`, on the shared page loop), its activities (on the shared page engine and
ledger), its intake route (`POST /api/toys`, through the task service), its domain rows (a
`toy_words` table the test creates) and its registry entry (`TOY_TYPE`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.client import Client

from activities.pages import PageItem, PageRun, PageTuning
from api.deps import Operator, ResourcesDep
from api.schemas import TaskOut
from longtasks.contracts.tasks import PageRequest, PageResult, TaskPlan
from longtasks.db.models import LongRunningTask
from longtasks.db.repositories import audit
from longtasks.db.repositories.audit import Actor
from longtasks.db.repositories.ledger import Claim, Outcome
from longtasks.domain import ItemStatus
from longtasks.tasks import NewTask, start_task
from task_types.registry import TaskTypeSpec, WorkerContext
from tests.task_types.toy_workflow import TOY, TOY_BEGIN, TOY_SHOUT_PAGE, ToyWorkflow

# What the type's migration would hold: its table, under row-level security like every table
# of a business's data (its rows are visible when their task is), and `longtasks migrate`'s
# grant to the application's role.
CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS toy_words (
    task_id bigint NOT NULL REFERENCES long_running_tasks (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    word text NOT NULL,
    PRIMARY KEY (task_id, seq)
);
ALTER TABLE toy_words ENABLE ROW LEVEL SECURITY;
ALTER TABLE toy_words FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant ON toy_words;
CREATE POLICY tenant ON toy_words
    USING (EXISTS (SELECT 1 FROM long_running_tasks t WHERE t.id = task_id))
    WITH CHECK (EXISTS (SELECT 1 FROM long_running_tasks t WHERE t.id = task_id));
GRANT SELECT, INSERT, UPDATE, DELETE ON toy_words TO longtasks_app;
"""
DROP_TABLE = "DROP TABLE IF EXISTS toy_words"


async def start_toy(
    engine: AsyncEngine, client: Client, *, task_queue: str, business_id: int, words: list[str]
) -> LongRunningTask:
    """The toy's start, through the task service: its words and its task row in one
    transaction, then its workflow."""

    async def store_words(conn: AsyncConnection, task: LongRunningTask) -> int:
        await conn.execute(
            text("INSERT INTO toy_words (task_id, seq, word) VALUES (:task_id, :seq, :word)"),
            [{"task_id": task.id, "seq": seq, "word": w} for seq, w in enumerate(words, 1)],
        )
        return len(words)

    # Outside a request: the audit log names the test as the actor.
    with audit.acting_as(Actor.system(business_id, "test")):
        task, _ = await start_task(
            engine,
            client,
            NewTask(business_id=business_id, task_type=TOY, total_items=len(words)),
            task_queue=task_queue,
            create_domain_rows=store_words,
            summary=lambda task, count: f"toy task {task.id}: {count} words",
        )
    return task


class ToyActivities:
    def __init__(self, engine: AsyncEngine, pages: PageTuning) -> None:
        self._engine = engine
        self._pages = pages
        self._concurrency = asyncio.Semaphore(4)

    @activity.defn(name=TOY_BEGIN.name)
    async def begin(self, task_id: int) -> TaskPlan:
        async with self._engine.connect() as conn:
            total = await conn.scalar(
                text("SELECT count(*) FROM toy_words WHERE task_id = :t"), {"t": task_id}
            )
        return self._pages.plan(int(total or 0))

    @activity.defn(name=TOY_SHOUT_PAGE.name)
    async def shout_page(self, request: PageRequest) -> PageResult:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT seq, word FROM toy_words WHERE task_id = :t"
                    " AND seq > :after AND seq <= :up_to ORDER BY seq"
                ),
                {"t": request.task_id, "after": request.after_seq, "up_to": request.up_to_seq},
            )
            words = [(int(r.seq), str(r.word)) for r in rows]

        async def shout(item: PageItem[str], claim: Claim) -> Outcome:
            # A little work per item, so progress is seen moving.
            await asyncio.sleep(0.05)
            if not item.payload.strip():
                return Outcome(item.key, ItemStatus.failed, "empty", "nothing to shout")
            return Outcome(item.key, ItemStatus.succeeded, provider_ref=item.payload.upper())

        items = [PageItem(key=str(seq), seq=seq, label=word, payload=word) for seq, word in words]
        page = PageRun(self._engine, request.task_id, items, shout, self._pages, self._concurrency)
        return await page.run()


def toy_activities(context: WorkerContext, pages: PageTuning) -> Sequence[object]:
    return [ToyActivities(context.engine, pages)]


class ToyIn(BaseModel):
    words: list[str] = Field(min_length=1, max_length=1000)


class ToyStarted(BaseModel):
    task: TaskOut


intake = APIRouter(prefix="/api/toys", tags=["toys"])


@intake.post("", status_code=202, response_model=ToyStarted)
async def post_toy(body: ToyIn, resources: ResourcesDep, principal: Operator) -> ToyStarted:
    task = await start_toy(
        resources.engine,
        await resources.temporal_client(),
        task_queue=resources.settings.temporal_task_queue,
        business_id=principal.business_id,
        words=body.words,
    )
    return ToyStarted(task=TaskOut.of(task))


TOY_TYPE = TaskTypeSpec(
    name=TOY,
    workflow=ToyWorkflow,
    activities=toy_activities,
    page_size=lambda settings: 3,
    intake=[intake],
)
