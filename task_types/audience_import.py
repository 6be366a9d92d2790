"""audience_import: normalize an uploaded customer list into an audience's members."""

from __future__ import annotations

from collections.abc import Sequence

from activities.audience_import import AudienceImportActivities
from activities.pages import PageTuning
from api.routers import audiences
from longtasks.domain import TaskType
from task_types.registry import TaskTypeSpec, WorkerContext
from workflows.audience_import import AudienceImportWorkflow


def audience_import_activities(context: WorkerContext, pages: PageTuning) -> Sequence[object]:
    settings = context.settings
    return [
        AudienceImportActivities(
            context.engine,
            pages,
            region=settings.default_phone_region,
            processes=settings.audience_import_processes,
        )
    ]


AUDIENCE_IMPORT = TaskTypeSpec(
    name=TaskType.audience_import,
    workflow=AudienceImportWorkflow,
    activities=audience_import_activities,
    # Rows per page: the chunks the API cut the upload into (the same setting, read there;
    # an import keeps the size its upload was cut with).
    page_size=lambda settings: settings.audience_import_page_size,
    intake=[audiences.router],
)
