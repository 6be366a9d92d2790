"""What a task type is made of, and the registry the worker and the API loop over.

A task type is one `TaskTypeSpec`: its workflow class (registered under the type's name), a
factory that builds its activities from the worker's dependencies, its intake (the API routers
it brings, if it has its own) and its page settings. Workflows and activities that are not a
task type but run on every worker (the task-row activities the page loop calls, the daily
cleanup, the Gmail Schedule's kick) are `Component`s of the same registry, so a `Registry` is
the whole list of what a worker runs and what an API serves beyond the shared task routes.

This package stands above `workflows/`, `activities/` and the intake routers in `api/routers/`
that it names (none of them imports it), and below the two composition roots that loop over it:
`worker.build_worker(..., registry=...)` and `api.app.create_app(..., registry=...)` take one,
so a deployment or a test can add its own types (tests/task_types/ registers a toy type).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity, workflow
from temporalio.client import Client

from activities.pages import PageTuning
from longtasks.db.repositories import task_types as task_type_repo
from longtasks.providers.gmail import GmailApi
from longtasks.providers.whatsapp import WhatsAppSender
from longtasks.settings import Settings


@dataclass
class WorkerDeps:
    """The resources a worker process makes once and shares (tests hand in their own)."""

    engine: AsyncEngine
    whatsapp: WhatsAppSender
    # None: receipt syncs on this worker fail with a clear error (no Gmail client configured).
    gmail: GmailApi | None = None


@dataclass(frozen=True)
class WorkerContext:
    """What an activities factory is given: the worker's resources, settings, Temporal client
    and the task queue it polls (for activities that start workflows themselves)."""

    deps: WorkerDeps
    settings: Settings
    client: Client
    task_queue: str

    @property
    def engine(self) -> AsyncEngine:
        return self.deps.engine


# A factory returns activity objects (instances whose `@activity.defn` methods are the
# activities) or activity functions; the registry collects the definitions.
ComponentActivities = Callable[[WorkerContext], Sequence[object]]
TaskActivities = Callable[[WorkerContext, PageTuning], Sequence[object]]
# Run by a worker process as it starts (e.g. create or update a Temporal Schedule).
OnWorkerStart = Callable[[Client, Settings], Awaitable[None]]


def page_tuning(settings: Settings, page_size: int) -> PageTuning:
    """Pages of `page_size` items; window, run length and timeouts are the worker's own."""
    return PageTuning(
        page_size=page_size,
        window=settings.page_window,
        pages_per_run=settings.pages_per_run,
        heartbeat_timeout_s=settings.heartbeat_timeout_s,
        cancel_poll_interval_s=settings.cancel_poll_interval_s,
    )


def workflow_name(cls: type) -> str:
    """The name a workflow class is registered under (`@workflow.defn(name=...)`)."""
    name = workflow._Definition.must_from_class(cls).name
    if name is None:
        raise ValueError(f"{cls.__name__} is a dynamic workflow; a task type needs a name")
    return name


def activity_definitions(provided: Iterable[object]) -> list[Callable[..., Any]]:
    """The `@activity.defn` callables among `provided`: functions as given, and every
    activity method of an object, so a class's new activity cannot be left unregistered."""
    found: list[Callable[..., Any]] = []
    for item in provided:
        if callable(item) and activity._Definition.from_callable(item) is not None:
            found.append(item)
            continue
        methods = [
            getattr(item, name)
            for name in dir(type(item))
            if not name.startswith("__")
            and activity._Definition.from_callable(getattr(type(item), name)) is not None
        ]
        if not methods:
            raise TypeError(f"{item!r} is neither an activity nor has activity methods")
        found += methods
    return found


@dataclass(frozen=True)
class TaskTypeSpec:
    """One task type: everything the worker and the API need to run and start it."""

    # The `task_type` of its rows, and the name its workflow is registered under.
    name: str
    workflow: type
    activities: TaskActivities
    # Items per page activity (a setting, e.g. BROADCAST_PAGE_SIZE).
    page_size: Callable[[Settings], int]
    # Its own start routes (a type started only by other means brings none).
    intake: Sequence[APIRouter] = ()
    # Its items are messages from the business's WhatsApp sender: its ETA is bounded by the
    # sender's pace, WhatsApp's daily tier and the business's daily cap (`longtasks.eta`).
    sends_messages: bool = False

    def __post_init__(self) -> None:
        registered = workflow_name(self.workflow)
        if registered != self.name:
            # The start service starts a task's workflow by the task's type name.
            raise ValueError(
                f"task type {self.name!r}: its workflow is registered as {registered!r}"
            )

    def pages(self, settings: Settings) -> PageTuning:
        return page_tuning(settings, self.page_size(settings))


def no_activities(context: WorkerContext) -> Sequence[object]:
    return ()


@dataclass(frozen=True)
class Component:
    """Workflows and activities a worker runs that are not a task type of their own."""

    name: str
    workflows: Sequence[type] = ()
    activities: ComponentActivities = no_activities
    on_worker_start: OnWorkerStart | None = None


@dataclass(frozen=True)
class Registry:
    task_types: Sequence[TaskTypeSpec]
    components: Sequence[Component] = ()

    def __post_init__(self) -> None:
        names = [t.name for t in self.task_types] + [c.name for c in self.components]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"registered twice: {', '.join(duplicates)}")
        workflows = [workflow_name(cls) for cls in self.workflows()]
        clashing = sorted({n for n in workflows if workflows.count(n) > 1})
        if clashing:
            raise ValueError(f"workflow names registered twice: {', '.join(clashing)}")

    @property
    def type_names(self) -> list[str]:
        return [t.name for t in self.task_types]

    @property
    def sending_type_names(self) -> frozenset[str]:
        """The types whose items are messages (`TaskTypeSpec.sends_messages`)."""
        return frozenset(t.name for t in self.task_types if t.sends_messages)

    def task_type(self, name: str) -> TaskTypeSpec:
        for spec in self.task_types:
            if spec.name == name:
                return spec
        raise KeyError(f"no task type {name!r} is registered")

    def with_task_types(self, *extra: TaskTypeSpec) -> Registry:
        """This registry and more types (e.g. a test's own)."""
        return Registry(task_types=(*self.task_types, *extra), components=self.components)

    def workflows(self) -> list[type]:
        return [t.workflow for t in self.task_types] + [
            cls for c in self.components for cls in c.workflows
        ]

    def activities(self, context: WorkerContext) -> list[Callable[..., Any]]:
        provided: list[object] = []
        for spec in self.task_types:
            provided += spec.activities(context, spec.pages(context.settings))
        for component in self.components:
            provided += component.activities(context)
        return activity_definitions(provided)

    async def ensure_in_database(self, engine: AsyncEngine) -> list[str]:
        """Make every registered type a row of `task_types` (the built-in ones are there from
        the migrations); the names added. Worker and API run it as they start."""
        async with engine.begin() as conn:
            return await task_type_repo.ensure(conn, self.type_names)

    async def on_worker_start(self, client: Client, settings: Settings) -> None:
        for component in self.components:
            if component.on_worker_start is not None:
                await component.on_worker_start(client, settings)

    def routers(self) -> list[APIRouter]:
        """Every task type's intake, in registry order."""
        return [router for spec in self.task_types for router in spec.intake]
