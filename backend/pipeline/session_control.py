"""What the API asks of a pipeline session: create, cancel, retry, with the owner checked.

The pipeline runs here (``PIPELINE_ENGINE`` on) or agents elsewhere do the work and only
publish events; cancel covers both: with no pipeline here it ends, with ``cancelled``
events, every agent those agents left unfinished.
"""

from __future__ import annotations

from typing import Any

from backend.core.auth import Principal
from backend.core.errors import Conflict, NotFound
from backend.hub.events import new_event_fields, valid_session_id
from backend.hub.hub import Hub
from backend.hub.sessions import SessionRecord, Sessions
from backend.pipeline.service import Pipeline

_UNFINISHED = ("queued", "running", "info")
_FINISHED = ("completed", "failed", "cancelled")


class SessionControl:
    def __init__(self, pipeline: Pipeline, sessions: Sessions, hub: Hub) -> None:
        self._pipeline = pipeline
        self._sessions = sessions
        self._hub = hub

    async def create(
        self,
        principal: Principal,
        prompt: str,
        options: dict[str, Any],
        session_id: str | None,
    ) -> SessionRecord:
        """A new session: queued and started when the pipeline runs here."""
        pipeline = self._pipeline
        if not pipeline.enabled:
            return await self._sessions.create(principal, prompt, options, session_id)
        async with pipeline.admission(principal.sub):
            await pipeline.admit(principal.sub)
            record = await self._sessions.create(
                principal, prompt, options, session_id, status="queued"
            )
            await pipeline.start(record.session_id, principal.sub)
        return record

    async def cancel(self, principal: Principal, session_id: str) -> None:
        record = await self.owned(principal, session_id)
        if record is not None and self._pipeline.enabled:
            await self._pipeline.cancel(session_id)
            return
        # Agents elsewhere do the work: end what they left unfinished.
        if record is not None and record.status in _FINISHED:
            raise Conflict(f"the session is already {record.status}", code="session_finished")
        await self._cancel_agents(session_id)
        if record is not None:
            await self._sessions.update(session_id, status="cancelled")

    async def retry(self, principal: Principal, session_id: str) -> None:
        record = await self.owned(principal, session_id)
        if record is None:
            raise NotFound("no such session", code="session_not_found")
        await self._pipeline.retry(session_id, record.owner)

    async def owned(self, principal: Principal, session_id: str) -> SessionRecord | None:
        """The caller's record; None for a session known only by its events (NotFound
        when there is neither)."""
        record = await self._sessions.readable(principal, valid_session_id(session_id))
        if record is None and (await self._hub.bus.history(session_id, None)).last_seq == 0:
            raise NotFound("no such session", code="session_not_found")
        return record

    async def _cancel_agents(self, session_id: str) -> None:
        history = await self._hub.bus.history(session_id, None)
        for agent, event in history.agents.items():
            if event.get("status") in _UNFINISHED:
                fields = new_event_fields(agent, "cancelled", event.get("progress"), "cancelled")
                await self._hub.publish(session_id, fields)
