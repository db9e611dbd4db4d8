"""The REST view of a session: its record merged with what its agents reported."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from backend.hub.bus import EventBus
from backend.hub.sessions import SessionRecord

_TERMINAL = {"completed", "failed", "cancelled"}


def derive_status(recorded: str | None, agents: dict[str, Any]) -> str:
    """The pipeline's own record and final event win; otherwise what the agents say."""
    if recorded in _TERMINAL:
        return recorded
    run = (agents.get("pipeline") or {}).get("status")
    if run in _TERMINAL | {"running", "queued"}:
        return str(run)
    statuses = {event.get("status") for event in agents.values()}
    if "failed" in statuses:
        return "failed"
    if statuses and statuses <= _TERMINAL | {"info"} and "completed" in statuses:
        return "completed"
    if "cancelled" in statuses and statuses <= _TERMINAL:
        return "cancelled"
    if "running" in statuses:
        return "running"
    return recorded or ("queued" if statuses else "created")


async def session_view(
    bus: EventBus, session_id: str, record: SessionRecord | None
) -> dict[str, Any]:
    history = await bus.history(session_id, None)
    base: dict[str, Any] = (
        asdict(record)
        if record is not None
        else {
            "session_id": session_id,
            "owner": None,
            "prompt": None,
            "options": {},
            "created_at": None,
            "updated_at": None,
            "outputs": {},
        }
    )
    base.pop("status", None)
    outputs = dict(base.pop("outputs", {}) or {})
    for event in history.agents.values():  # agents report outputs such as video_url
        for key in ("video_url", "captions_url", "thumbnail_url"):
            value = (event.get("data") or {}).get(key)
            if isinstance(value, str):
                outputs.setdefault(key, value)
    return {
        **base,
        "status": derive_status(record.status if record else None, history.agents),
        "agents": history.agents,
        "last_seq": history.last_seq,
        "epoch": history.epoch,
        "outputs": outputs,
        **{k: v for k, v in outputs.items() if k == "video_url"},
    }
