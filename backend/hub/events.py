"""Agent status events: validation of what publishers send, and the wire form."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any

from backend.core.clock import now_iso
from backend.core.errors import InvalidInput, PayloadTooLarge

SESSION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
AGENT_NAME = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_MESSAGE_CHARS = 4_000
# Keeps every event well under API Gateway's 128 KB frame limit.
MAX_DATA_BYTES = 64 * 1024


# An agent's status in a session's events (interviews have InterviewStatus). Its name is
# the OpenAPI component the clients are generated from, so it stays ``Status``; no docstring,
# which would change that document too.
class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INFO = "info"


def valid_session_id(value: object) -> str:
    if not isinstance(value, str) or not SESSION_ID.fullmatch(value):
        raise InvalidInput(
            "a session id is 1 to 128 characters from [A-Za-z0-9._:-]", code="invalid_session_id"
        )
    return value


def new_event_fields(
    agent: str,
    status: str,
    progress: float | None = None,
    message: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validated fields of one event, before the bus gives it a ``seq``."""
    if not AGENT_NAME.fullmatch(agent):
        raise InvalidInput("agent is 1 to 64 characters from [A-Za-z0-9._:-]", code="invalid_agent")
    try:
        status = Status(status).value
    except ValueError:
        allowed = ", ".join(s.value for s in Status)
        raise InvalidInput(f"status must be one of {allowed}", code="invalid_status") from None
    if progress is not None and not 0.0 <= progress <= 1.0:
        raise InvalidInput("progress is between 0 and 1, or null", code="invalid_progress")
    if message is not None and len(message) > MAX_MESSAGE_CHARS:
        raise InvalidInput(
            f"message is at most {MAX_MESSAGE_CHARS} characters", code="invalid_message"
        )
    if data and len(json.dumps(data, separators=(",", ":"))) > MAX_DATA_BYTES:
        raise PayloadTooLarge(
            f"data is at most {MAX_DATA_BYTES} bytes of JSON", code="event_too_large"
        )
    return {
        "type": "agent_status",
        "agent": agent,
        "status": status,
        "progress": progress,
        "message": message,
        "data": data or {},
        "ts": now_iso(),
    }


def wire_event(session_id: str, seq: int, fields: dict[str, Any]) -> dict[str, Any]:
    """The contract's event, keys in the documented order."""
    return {
        "type": "agent_status",
        "session_id": session_id,
        "seq": seq,
        "agent": fields["agent"],
        "status": fields["status"],
        "progress": fields.get("progress"),
        "message": fields.get("message"),
        "data": fields.get("data") or {},
        "ts": fields["ts"],
    }
