"""What every reporter does: one status event of one agent in one session."""

from __future__ import annotations

from typing import Any, Literal, Protocol

Status = Literal["queued", "running", "completed", "failed", "cancelled", "info"]


class ReportError(Exception):
    """The event was refused (bad input, auth) or could not be delivered in time."""

    def __init__(self, message: str, *, code: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class Reporter(Protocol):
    async def report(
        self,
        session: str,
        agent: str,
        status: Status,
        progress: float | None = None,
        message: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        """Publish one event; returns its ``seq`` in the session."""
        ...

    async def aclose(self) -> None: ...
