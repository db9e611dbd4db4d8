"""Pipeline sessions over REST (CONTRACT §2.2)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from backend.app.deps import PrincipalDep, StateDep, rate_limit
from backend.app.http_errors import error_responses
from backend.core.auth import Principal
from backend.core.errors import NotFound
from backend.core.rate_limits import LimitName
from backend.hub.events import SESSION_ID, Status, new_event_fields, valid_session_id
from backend.hub.json_shape import json_problem
from backend.hub.seq import MAX_SEQ
from backend.hub.views import session_view
from backend.pipeline.options import VideoOptions

router = APIRouter(prefix="/api", tags=["sessions"], responses=error_responses(401, 503))
_ONE_SESSION = error_responses(400, 403, 404)


def _plain(value: Any) -> Any:
    """Only JSON every subscriber can read back is stored and relayed (see json_shape)."""
    problem = json_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


class NewSession(VideoOptions):
    """A video to generate: the prompt, the options (each bounded), an optional id."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=20_000)
    session_id: str | None = Field(default=None, pattern=f"^{SESSION_ID.pattern}$")


class NewEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    status: Status
    progress: float | None = Field(default=None, ge=0.0, le=1.0, strict=True)
    message: str | None = Field(default=None, max_length=4000)
    data: Annotated[dict[str, Any] | None, AfterValidator(_plain)] = None


# Agents and services only; one dependency that authenticates, checks the role and counts
# the request (each dependency FastAPI solves costs every publish).
Publisher = Annotated[Principal, Depends(rate_limit(LimitName.EVENT_PUBLISH, privileged=True))]


# First in the module, and the module first in the app: FastAPI tries routes in order
# (~5 µs each), and agents publish far more often than anything else is called.
@router.post(
    "/sessions/{session_id}/events",
    status_code=202,
    responses=error_responses(400, 403, 413, 429),
)
async def publish_event(
    session_id: str, body: NewEvent, _: Publisher, state: StateDep
) -> dict[str, int]:
    fields = new_event_fields(body.agent, body.status.value, body.progress, body.message, body.data)
    event = await state.hub.publish(valid_session_id(session_id), fields)
    return {"seq": event.seq}


@router.post(
    "/sessions",
    status_code=201,
    dependencies=[Depends(rate_limit(LimitName.SESSION_CREATE))],
    responses=error_responses(409, 429),
)
async def create_session(
    body: NewSession, principal: PrincipalDep, state: StateDep
) -> dict[str, Any]:
    options = body.model_dump(exclude_unset=True, exclude={"prompt", "session_id"})
    record = await state.session_control.create(principal, body.prompt, options, body.session_id)
    return await session_view(state.hub.bus, record.session_id, record)


@router.get("/sessions", responses=error_responses(400))
async def list_sessions(
    principal: PrincipalDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    """The caller's sessions, newest first; pass ``next_cursor`` back for the next page."""
    records, next_cursor = await state.sessions.owned(principal.sub, limit=limit, cursor=cursor)
    views = await asyncio.gather(
        *(session_view(state.hub.bus, record.session_id, record) for record in records)
    )
    return {"sessions": list(views), "next_cursor": next_cursor}


@router.get("/sessions/{session_id}", responses=_ONE_SESSION)
@router.get("/get-video-session/{session_id}", responses=_ONE_SESSION)
async def get_session(session_id: str, principal: PrincipalDep, state: StateDep) -> dict[str, Any]:
    record = await state.sessions.readable(principal, valid_session_id(session_id))
    view = await session_view(state.hub.bus, session_id, record)
    if record is None and view["last_seq"] == 0:
        raise NotFound("no such session", code="session_not_found")
    return view


@router.get("/sessions/{session_id}/events", responses=_ONE_SESSION)
async def list_events(
    session_id: str,
    principal: PrincipalDep,
    state: StateDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    await state.sessions.readable(principal, valid_session_id(session_id))
    history = await state.hub.bus.history(session_id, after, limit=limit)
    return {
        "events": [_load(event.text) for event in history.events],
        "last_seq": history.last_seq,
        "epoch": history.epoch,
        "complete": history.complete,
    }


@router.post("/sessions/{session_id}/cancel", responses=_ONE_SESSION | error_responses(409))
async def cancel_session(
    session_id: str, principal: PrincipalDep, state: StateDep
) -> dict[str, Any]:
    await state.session_control.cancel(principal, session_id)
    return await session_view(state.hub.bus, session_id, await state.sessions.get(session_id))


@router.post(
    "/sessions/{session_id}/retry", status_code=202, responses=_ONE_SESSION | error_responses(409)
)
async def retry_session(
    session_id: str, principal: PrincipalDep, state: StateDep
) -> dict[str, Any]:
    await state.session_control.retry(principal, session_id)
    return await session_view(state.hub.bus, session_id, await state.sessions.get(session_id))


def _load(text: str) -> Any:
    return json.loads(text)
