"""Starting and cancelling tasks: the service every intake uses (the REST routes, the Gmail
Schedule's kick, a test's toy type), outside the HTTP layer.

`start_task` writes the task row and the domain rows in one transaction, commits, and starts
the workflow with ids only; if Temporal refuses, the row says so (`failed` with the reason) and
`TaskNotStarted` is raised (the API answers 503). `cancel_task` raises the flag, then signals.
"""

from longtasks.tasks.cancel import cancel_task
from longtasks.tasks.errors import CancelNotDelivered, TaskNotStarted
from longtasks.tasks.start import NewTask, launch, start_task

__all__ = ["CancelNotDelivered", "NewTask", "TaskNotStarted", "cancel_task", "launch", "start_task"]
