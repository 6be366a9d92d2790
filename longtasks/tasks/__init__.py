"""Starting and cancelling tasks: the service every intake uses (the REST routes, the Gmail
Schedule's kick, a test's toy type), outside the HTTP layer.

`start_task` writes the task row and the domain rows in one transaction, commits, and starts
the workflow with ids only; if Temporal refuses, the row says so (`failed` with the reason) and
`TaskNotStarted` is raised (the API answers 503). `cancel_task` raises the flag, then signals;
so do `pause_task`, `resume_task`, `approve_task` and `reject_task` (`controls`).
"""

from longtasks.tasks.cancel import cancel_task
from longtasks.tasks.controls import (
    Controlled,
    approve_task,
    pause_task,
    reject_task,
    resume_task,
)
from longtasks.tasks.errors import (
    CancelNotDelivered,
    ControlRefused,
    SignalNotDelivered,
    TaskNotStarted,
)
from longtasks.tasks.start import NewTask, launch, start_task

__all__ = [
    "CancelNotDelivered",
    "ControlRefused",
    "Controlled",
    "NewTask",
    "SignalNotDelivered",
    "TaskNotStarted",
    "approve_task",
    "cancel_task",
    "launch",
    "pause_task",
    "reject_task",
    "resume_task",
    "start_task",
]
