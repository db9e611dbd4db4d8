"""REST surface of the interview service (CONTRACT §3), mounted under /api/interview."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from backend.app.deps import PrincipalDep, StateDep, caller_ip, rate_limit
from backend.app.http_errors import error_responses
from backend.core.errors import InvalidInput, NotFound, PayloadTooLarge
from backend.core.rate_limits import LimitName
from interview_service.forwarding import Incoming, Relayed
from interview_service.report import CONTENT_SECURITY_POLICY
from interview_service.webhook_targets import WebhookTargetRefused

# Bodies bigger than this are refused by their Content-Length before they are read.
MAX_BODY_BYTES = 256 * 1024


async def _bounded_body(request: Request) -> None:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body over {MAX_BODY_BYTES} bytes", code="body_too_large")


router = APIRouter(
    prefix="/api/interview",
    tags=["interview"],
    dependencies=[Depends(_bounded_body)],
    responses=error_responses(413),
)
# The error statuses each kind of route can answer (CONTRACT §3), for the OpenAPI document.
_READ = error_responses(401, 403, 404, 503)
_SIGNALING = error_responses(400, 401, 403, 404, 409, 429, 502, 503)

StartLimit = Depends(rate_limit(LimitName.INTERVIEW_START))
SignalingLimit = Depends(rate_limit(LimitName.SIGNALING))

InterviewId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class OwnerAnswered(Exception):
    """Another process answered this request; its answer goes back unchanged."""

    def __init__(self, answer: Relayed) -> None:
        self.answer = answer


async def owner_answered(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, OwnerAnswered)
    answer = exc.answer
    return Response(answer.body, status_code=answer.status, headers=answer.headers)


async def _incoming(request: Request, state: StateDep) -> Incoming:
    """The request for the interview service; a genuine forwarded one keeps its client's
    address for the rate limits that follow."""
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    incoming = Incoming(
        request.method, path, request.headers, await request.body(), caller_ip(request, state)
    )
    forwarded = state.interviews.forwarded_from(incoming)
    if forwarded is not None and forwarded.client is not None:
        request.scope["client"] = (forwarded.client, 0)
    return incoming


async def _at_owner(request: Request, interview_id: InterviewId, state: StateDep) -> None:
    """Signaling for a call another process holds is answered by that process (before
    any limit is counted: the owner counts it, once)."""
    answer = await state.interviews.forward_to_owner(interview_id, await _incoming(request, state))
    if answer is not None:
        raise OwnerAnswered(answer)


async def _where_accepted(request: Request, state: StateDep) -> None:
    """A draining process hands ``/start`` to a peer that takes interviews."""
    answer = await state.interviews.forward_start(await _incoming(request, state))
    if answer is not None:
        raise OwnerAnswered(answer)


AtOwner = Depends(_at_owner)


Text = Annotated[str, StringConstraints(strip_whitespace=True)]


class Criterion(BaseModel):
    """One rubric criterion: scored from 1 to ``scale``, with quotes as evidence."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=60)
    description: Text = Field(min_length=1, max_length=500)
    scale: int = Field(default=5, ge=2, le=10, strict=True)


class StartBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # The TURN username is "<expiry>:<user_id>": no ':' and no control characters. With
    # auth on it is the caller's own id (absent: it defaults to it).
    user_id: str | None = Field(default=None, min_length=1, max_length=128)
    role: Text | None = Field(default=None, min_length=1, max_length=200)
    # Given questions are asked in order; without them, a job description lets the
    # OpenAI interviewer draft 4 to 6 (the local one uses its default questions).
    questions: list[Annotated[Text, Field(min_length=1, max_length=1000)]] = Field(
        default_factory=list, max_length=50
    )
    job_description: Text | None = Field(default=None, min_length=1, max_length=20_000)
    rubric: list[Criterion] | None = Field(default=None, min_length=1, max_length=10)
    max_follow_ups: int | None = Field(default=None, ge=0, le=5, strict=True)
    language: str = Field(default="en", min_length=2, max_length=16, pattern=r"^[A-Za-z-]+$")
    max_duration_s: float | None = Field(default=None, gt=0, le=6 * 3600, strict=True)
    # POSTed the results when the interview ends, signed (X-Signature); https in production,
    # never a private address unless WEBHOOK_ALLOW_PRIVATE
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048)
    # The candidate's consent to keeping the call's audio (recording_url in the results)
    record: bool = Field(default=False, strict=True)

    @field_validator("rubric")
    @classmethod
    def _distinct_names(cls, rubric: list[Criterion] | None) -> list[Criterion] | None:
        names = [c.name.casefold() for c in rubric or []]
        if len(names) != len(set(names)):
            raise ValueError("rubric criteria need distinct names")
        return rubric

    @field_validator("user_id")
    @classmethod
    def _printable_without_colon(cls, value: str | None) -> str | None:
        if value is not None and (":" in value or not value.isprintable()):
            raise ValueError("user_id has no ':' and no control characters")
        return value


class SessionDescription(BaseModel):
    sdp: str = Field(min_length=1)
    type: Literal["offer", "answer"]


class Candidate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    candidate: str | None = None
    sdpMid: str | None = None
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=63, strict=True)
    usernameFragment: str | None = None


class TranscriptBody(BaseModel):
    role: Literal["candidate", "interviewer"]
    text: str = Field(min_length=1, max_length=10_000)
    ts: float | None = Field(default=None, strict=True)


@router.get("/health")
async def interview_health(state: StateDep) -> dict[str, str]:
    """The interview service's own liveness, in the same shape as /health."""
    return {
        "status": "healthy",
        "environment": state.settings.environment.value,
        "version": state.settings.version,
    }


@router.post(
    "/start",
    status_code=201,
    dependencies=[Depends(_where_accepted), StartLimit],
    responses=error_responses(400, 401, 403, 422, 429, 503),
)
async def start(body: StartBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    try:
        return await state.interviews.start(principal, body.model_dump())
    except WebhookTargetRefused as exc:  # a field the schema cannot judge: a 422 all the same
        raise RequestValidationError(
            [{"loc": ("body", "webhook_url"), "msg": exc.message, "type": exc.code}]
        ) from None


@router.get("/{interview_id}/status", responses=_READ)
async def status(
    interview_id: InterviewId, state: StateDep, principal: PrincipalDep
) -> dict[str, Any]:
    return await state.interviews.status(principal, interview_id)


@router.get("/{interview_id}/ice-servers", responses=_READ)
async def ice_servers(
    interview_id: InterviewId, state: StateDep, principal: PrincipalDep
) -> dict[str, Any]:
    return await state.interviews.signaling.ice_server_list(principal, interview_id)


@router.post(
    "/{interview_id}/rtc/offer", dependencies=[AtOwner, SignalingLimit], responses=_SIGNALING
)
async def rtc_offer(
    interview_id: InterviewId,
    body: SessionDescription,
    state: StateDep,
    principal: PrincipalDep,
) -> dict[str, str]:
    """The browser's offer; the answer holds every server candidate (no trickle needed)."""
    if body.type != "offer":
        raise InvalidInput("type must be 'offer'", code="invalid_sdp_type")
    sdp = await state.interviews.signaling.offer(principal, interview_id, body.sdp)
    return {"sdp": sdp, "type": "answer"}


@router.post(
    "/{interview_id}/rtc/restart", dependencies=[AtOwner, SignalingLimit], responses=_SIGNALING
)
async def rtc_restart(
    interview_id: InterviewId, state: StateDep, principal: PrincipalDep
) -> dict[str, str]:
    """A server offer on a fresh peer connection (ICE restart); reply with rtc/answer."""
    sdp = await state.interviews.signaling.restart(principal, interview_id)
    return {"sdp": sdp, "type": "offer"}


@router.post(
    "/{interview_id}/rtc/answer",
    status_code=204,
    dependencies=[AtOwner, SignalingLimit],
    responses=_SIGNALING,
)
async def rtc_answer(
    interview_id: InterviewId,
    body: SessionDescription,
    state: StateDep,
    principal: PrincipalDep,
) -> Response:
    if body.type != "answer":
        raise InvalidInput("type must be 'answer'", code="invalid_sdp_type")
    await state.interviews.signaling.answer(principal, interview_id, body.sdp)
    return Response(status_code=204)


@router.post(
    "/{interview_id}/rtc/ice-candidate",
    status_code=204,
    dependencies=[AtOwner, SignalingLimit],
    responses=_SIGNALING,
)
async def rtc_candidate(
    interview_id: InterviewId,
    state: StateDep,
    principal: PrincipalDep,
    body: Annotated[Candidate | list[Candidate] | None, Body()] = None,
) -> Response:
    """One candidate or a list; ``candidate: ""`` or null (or an empty body) ends them."""
    items = body if isinstance(body, list) else [body or Candidate()]
    if len(items) > 50:
        raise InvalidInput("at most 50 candidates per request", code="too_many_candidates")
    await state.interviews.signaling.candidates(
        principal, interview_id, [item.model_dump() for item in items]
    )
    return Response(status_code=204)


@router.post("/{interview_id}/transcript", status_code=201, dependencies=[AtOwner], responses=_READ)
async def transcript(
    interview_id: InterviewId,
    body: TranscriptBody,
    state: StateDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    return await state.interviews.add_transcript(
        principal, interview_id, body.role, body.text, body.ts
    )


@router.get("/{interview_id}/results", responses=_READ)
async def results(
    interview_id: InterviewId, state: StateDep, principal: PrincipalDep
) -> dict[str, Any]:
    return await state.interviews.results(principal, interview_id)


@router.get(
    "/{interview_id}/report",
    responses={
        **_READ,
        200: {
            "description": "The report, a self-contained HTML page",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
    },
)
async def report(
    interview_id: InterviewId, state: StateDep, principal: PrincipalDep
) -> HTMLResponse:
    """The results as a readable HTML page (summary, scores and quotes, transcript, metrics)."""
    return HTMLResponse(
        await state.interviews.report(principal, interview_id),
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


@router.post("/{interview_id}/end", dependencies=[AtOwner], responses=_READ)
async def end(
    interview_id: InterviewId, state: StateDep, principal: PrincipalDep
) -> dict[str, Any]:
    return await state.interviews.end(principal, interview_id)


@router.get(
    "/{interview_id}/recording",
    responses={
        **_READ,
        200: {"content": {"audio/ogg": {}}, "description": "The recording (stereo Opus/Ogg)"},
        307: {"description": "Redirect to the stored recording (S3 presigned URL)"},
    },
    response_class=FileResponse,
)
async def recording(interview_id: InterviewId, state: StateDep, principal: PrincipalDep) -> Any:
    """The call's recording (``record: true``), for its owner: left candidate, right interviewer."""
    path, link = await state.interviews.recording(principal, interview_id)
    if path is not None:
        return FileResponse(
            path,
            media_type="audio/ogg",
            filename=f"interview-{interview_id}.ogg",
            headers={"Cache-Control": "private, no-store"},
        )
    return RedirectResponse(str(link), status_code=307)


@router.delete(
    "/{interview_id}",
    status_code=204,
    dependencies=[AtOwner],
    responses=error_responses(401, 404, 503),
)
async def delete(interview_id: InterviewId, state: StateDep, principal: PrincipalDep) -> Response:
    """Remove everything of an interview (record, transcript, recording, webhook outbox)."""
    await state.interviews.delete(principal, interview_id)
    return Response(status_code=204)


DEMO_PAGE = Path(__file__).resolve().parents[1] / "static" / "interview.html"
demo_router = APIRouter(tags=["interview"])


@demo_router.get("/demo/interview", response_class=HTMLResponse, include_in_schema=False)
async def demo_page(state: StateDep) -> HTMLResponse:
    """The browser test page: start an interview, talk, hear it, watch the events."""
    if not state.settings.interview_demo_page:
        raise NotFound("the demo page is off (INTERVIEW_DEMO_PAGE=false)", code="not_found")
    return HTMLResponse(
        DEMO_PAGE.read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"}
    )
