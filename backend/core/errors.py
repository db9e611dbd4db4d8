"""Domain errors: raised by the hub, the pipeline and the interview core.

They carry a snake_case ``code`` and a human message and know nothing about HTTP;
:mod:`backend.app.http_errors` maps each kind to a status code at the edge.
"""

from __future__ import annotations


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(DomainError):
    code = "invalid_input"


class Unauthorized(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class LimitExceeded(DomainError):
    """Too many of something right now; ``retry_after_s`` says when to try again."""

    code = "limit_exceeded"

    def __init__(self, message: str, *, code: str | None = None, retry_after_s: int = 5) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    """A dependency (Redis, a provider) cannot serve right now; clients should retry."""

    code = "unavailable"

    def __init__(self, message: str, *, code: str | None = None, retry_after_s: int = 1) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s


class UpstreamFailed(DomainError):
    """A dependency answered, but wrongly (TURN refused credentials, a provider erred)."""

    code = "upstream_failed"
