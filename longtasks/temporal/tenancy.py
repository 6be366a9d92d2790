"""Activities act for the business of the task they work on (longtasks.db.tenancy).

A worker interceptor: before an activity runs, it reads which task its input names (an `int`
argument is a task id, by the convention of longtasks.contracts.activities, or a `task_id`
field), asks the database which business that task is for (the named function
`longtasks_task_business`), and runs the activity acting for it, so every transaction it
begins sees that business's rows and no other's; an input naming a `business_id` instead acts
for that business. An activity whose input names neither is refused (non-retryable), unless
it is one of the few that must cross businesses through named paths (`CROSS_BUSINESS`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from longtasks.contracts import activities as act
from longtasks.db.tenancy import acting_for

# Activities that act for no business: their database work goes through named functions.
CROSS_BUSINESS = frozenset({act.CLEANUP_DELETE_BATCH.name})


class NoBusiness(Exception):
    pass


_TASK_BUSINESS = text("SELECT longtasks_task_business(:task_id)")
# A task's business never changes: remembered, up to this many tasks per worker.
_REMEMBERED = 10_000


class ActForTheTask(Interceptor):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._businesses: OrderedDict[int, int] = OrderedDict()

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActingInbound(next, self)

    async def business_of(self, args: Sequence[Any]) -> int | None:
        """The business the input's task (or business) is; NoBusiness when it names neither."""
        for arg in args:
            task_id = arg if isinstance(arg, int) else getattr(arg, "task_id", None)
            if isinstance(task_id, int) and not isinstance(task_id, bool):
                return await self._task_business(task_id)
            business_id = getattr(arg, "business_id", None)
            if isinstance(business_id, int):
                return business_id
        raise NoBusiness

    async def _task_business(self, task_id: int) -> int | None:
        known = self._businesses.get(task_id)
        if known is not None:
            self._businesses.move_to_end(task_id)
            return known
        async with self._engine.connect() as conn:
            business_id = (await conn.execute(_TASK_BUSINESS, {"task_id": task_id})).scalar()
        if business_id is None:  # no such task (deleted): act for no one
            return None
        self._businesses[task_id] = int(business_id)
        if len(self._businesses) > _REMEMBERED:
            self._businesses.popitem(last=False)
        return int(business_id)


class _ActingInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, root: ActForTheTask) -> None:
        super().__init__(next)
        self._root = root

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        try:
            business_id = (
                None if name in CROSS_BUSINESS else await self._root.business_of(input.args)
            )
        except NoBusiness:
            raise ApplicationError(
                f"activity {name} names no task and no business, so it cannot act for one;"
                " give its input a task id, or list it in CROSS_BUSINESS with named paths",
                type="NoBusiness",
                non_retryable=True,
            ) from None
        with acting_for(business_id):
            return await super().execute_activity(input)
