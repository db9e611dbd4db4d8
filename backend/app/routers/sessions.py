"""Pipeline sessions over REST (CONTRACT §2.2)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from backend.app.deps import PrincipalDep, PrivilegedDep, ServicesDep, rate_limit
from backend.app.errors import NotFound
from backend.app.hub.events import Status, new_event_fields, valid_session_id
from backend.app.hub.views import session_view
from backend.app.rate_limits import LimitName

router = APIRouter(prefix="/api", tags=["sessions"])


class NewSession(BaseModel):
    model_config = ConfigDict(extra="allow")  # further options are kept with the session

    prompt: str = Field(min_length=1, max_length=20_000)
    session_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,128}$")


class NewEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    status: Status
    progress: float | None = Field(default=None, ge=0.0, le=1.0)
    message: str | None = Field(default=None, max_length=4000)
    data: dict[str, Any] | None = None


@router.post(
    "/sessions", status_code=201, dependencies=[Depends(rate_limit(LimitName.SESSION_CREATE))]
)
async def create_session(
    body: NewSession, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    options = body.model_extra or {}
    record = await services.sessions.create(principal, body.prompt, options, body.session_id)
    return await session_view(services.hub.bus, record.session_id, record)


@router.get("/sessions/{session_id}")
@router.get("/get-video-session/{session_id}")
async def get_session(
    session_id: str, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    record = await services.sessions.readable(principal, valid_session_id(session_id))
    view = await session_view(services.hub.bus, session_id, record)
    if record is None and view["last_seq"] == 0:
        raise NotFound("no such session", code="session_not_found")
    return view


@router.get("/sessions/{session_id}/events")
async def list_events(
    session_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    await services.sessions.readable(principal, valid_session_id(session_id))
    history = await services.hub.bus.history(session_id, after, limit=limit)
    return {
        "events": [_load(event.text) for event in history.events],
        "last_seq": history.last_seq,
        "epoch": history.epoch,
        "complete": history.complete,
    }


@router.post(
    "/sessions/{session_id}/events",
    status_code=202,
    dependencies=[Depends(rate_limit(LimitName.EVENT_PUBLISH))],
)
async def publish_event(
    session_id: str, body: NewEvent, _: PrivilegedDep, services: ServicesDep
) -> dict[str, int]:
    fields = new_event_fields(body.agent, body.status.value, body.progress, body.message, body.data)
    event = await services.hub.publish(valid_session_id(session_id), fields)
    return {"seq": event.seq}


@router.post("/sessions/{session_id}/cancel")
async def cancel_session(
    session_id: str, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    record = await services.sessions.readable(principal, valid_session_id(session_id))
    history = await services.hub.bus.history(session_id, None)
    if record is None and history.last_seq == 0:
        raise NotFound("no such session", code="session_not_found")
    for agent, event in history.agents.items():
        if event.get("status") in ("queued", "running", "info"):
            await services.hub.publish(
                session_id,
                new_event_fields(
                    agent, "cancelled", event.get("progress"), "cancelled by the owner"
                ),
            )
    if record is not None:
        record.status = "cancelled"
        await services.sessions.save(record)
    return await session_view(services.hub.bus, session_id, record)


def _load(text: str) -> Any:
    return json.loads(text)
