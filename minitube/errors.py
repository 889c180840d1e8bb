"""Domain errors. Handlers and services raise these; one middleware turns
them into the JSON error envelope of API.md."""

from __future__ import annotations


class AppError(Exception):
    """An error a client can act on: it carries its status and stable code."""

    status = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        if code:
            self.code = code
        if status:
            self.status = status
        self.fields = fields
        self.headers = headers or {}


class BadRequest(AppError):
    status, code, message = 400, "bad_request", "The request is malformed."


class Unauthorized(AppError):
    status, code, message = 401, "unauthorized", "Authentication is required."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"WWW-Authenticate": 'Bearer realm="minitube"'})


class Forbidden(AppError):
    status, code, message = 403, "forbidden", "You are not allowed to do that."


class NotFound(AppError):
    status, code, message = 404, "not_found", "Not found."


class Conflict(AppError):
    status, code, message = 409, "conflict", "That conflicts with existing data."


class EmailTaken(Conflict):
    code, message = "email_taken", "That e-mail is already registered."

    def __init__(self) -> None:
        super().__init__(fields={"email": "already registered"})


class PreconditionFailed(AppError):
    status, code, message = 412, "precondition_failed", "The representation does not match the precondition."


class TooLarge(AppError):
    status, code, message = 413, "too_large", "The body is too large."


class NotAVideo(AppError):
    status, code, message = 415, "unsupported_media", "The file is not a video this server can play."


class RangeNotSatisfiable(AppError):
    status, code, message = 416, "range_not_satisfiable", "The requested range is outside the file."


class Invalid(AppError):
    status, code, message = 422, "validation_failed", "Some fields are invalid."

    def __init__(self, fields: dict[str, str], message: str | None = None) -> None:
        super().__init__(message, fields=fields)


class RateLimited(AppError):
    status, code, message = 429, "rate_limited", "Too many requests; try again later."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        retry_after = max(1, int(retry_after))
        super().__init__(message, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class ServiceUnavailable(AppError):
    status, code, message = 503, "service_unavailable", "A backing service is unavailable."
