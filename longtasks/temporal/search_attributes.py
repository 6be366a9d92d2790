"""Search attributes that let ops filter runs in the Temporal Web UI.

`TaskType="broadcast" AND BusinessId=1`. Registered on the dev server at start
(`--search-attribute`), and by `temporal operator search-attribute create` in production.
Pure module: workflow code imports it.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

BUSINESS_ID = SearchAttributeKey.for_int("BusinessId")
TASK_ID = SearchAttributeKey.for_int("TaskId")
TASK_TYPE = SearchAttributeKey.for_keyword("TaskType")
TASK_STATUS = SearchAttributeKey.for_keyword("TaskStatus")

ALL_KEYS = (BUSINESS_ID, TASK_ID, TASK_TYPE, TASK_STATUS)


# The dev server's task-queue matcher with priority and fairness keys (off by default there).
DEV_SERVER_MATCHING_FLAGS = [
    "--dynamic-config-value",
    "matching.useNewMatcher=true",
    "--dynamic-config-value",
    "matching.enableFairness=true",
    # Priority and fairness order tasks within one partition of a task queue; with the default
    # four, a poller can be handed a low-priority page from one partition while a high-priority
    # page waits in another. A single-node dev server gains nothing from more than one.
    "--dynamic-config-value",
    "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value",
    "matching.numTaskqueueWritePartitions=1",
]


def dev_server_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    kinds = [
        (BUSINESS_ID.name, "Int"),
        (TASK_ID.name, "Int"),
        (TASK_TYPE.name, "Keyword"),
        (TASK_STATUS.name, "Keyword"),
    ]
    flags: list[str] = []
    for name, kind in kinds:
        flags += ["--search-attribute", f"{name}={kind}"]
    return flags
