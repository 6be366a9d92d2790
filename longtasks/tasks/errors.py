"""What the task service reports that its callers map to their own answers (the API: 503)."""

from __future__ import annotations


class TaskNotStarted(Exception):
    """Temporal refused (or could not be reached for) the workflow start; the task row was
    marked `failed` with the reason, so nothing is left `running` with no workflow behind it."""

    def __init__(self, task_id: int, reason: str) -> None:
        super().__init__(reason)
        self.task_id = task_id
        self.reason = reason


class CancelNotDelivered(Exception):
    """The cancel flag is set (activities stop on it), but the workflow could not be told yet;
    repeating the cancel signals it again."""

    def __init__(self, task_id: int, reason: str) -> None:
        super().__init__(reason)
        self.task_id = task_id
        self.reason = reason


class SignalNotDelivered(Exception):
    """The change is recorded (pages obey the database flags), but the workflow could not be
    told yet; repeating the request signals it again."""

    def __init__(self, task_id: int, reason: str) -> None:
        super().__init__(reason)
        self.task_id = task_id
        self.reason = reason


class ControlRefused(Exception):
    """A pause, resume, approval or rejection the task's state (or the caller) does not allow;
    `forbidden`: the caller may not (the creator approving their own task), else a conflict."""

    def __init__(self, task_id: int, reason: str, *, forbidden: bool = False) -> None:
        super().__init__(reason)
        self.task_id = task_id
        self.reason = reason
        self.forbidden = forbidden
