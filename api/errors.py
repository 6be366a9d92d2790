"""One error family carrying its HTTP status; one handler turns it into `{"detail": ...}`."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from longtasks.tasks import CancelNotDelivered, ControlRefused, SignalNotDelivered, TaskNotStarted


class AppError(Exception):
    status_code = 400

    def __init__(
        self, detail: str, *, status_code: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers


class Unauthorized(AppError):
    status_code = 401


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class TooLarge(AppError):
    status_code = 413


class RateLimited(AppError):
    status_code = 429


class Unavailable(AppError):
    status_code = 503


async def app_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    headers = dict(exc.headers or {})
    if isinstance(exc, Unauthorized):
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def task_service_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """The task service's refusals (`longtasks.tasks`): Temporal could not be told, so retry
    (503); a control the task's state does not allow (409) or the caller may not use (403)."""
    if isinstance(exc, ControlRefused):
        status = Forbidden.status_code if exc.forbidden else Conflict.status_code
        return JSONResponse({"detail": exc.reason}, status_code=status)
    assert isinstance(exc, TaskNotStarted | CancelNotDelivered | SignalNotDelivered)
    return JSONResponse({"detail": exc.reason}, status_code=Unavailable.status_code)
