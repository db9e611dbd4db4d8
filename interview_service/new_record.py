"""A new interview's record from what ``/start`` asked: whom it is for, and its plan
(its questions given, drafted from the job description, or the default ones)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from typing import Any

import structlog

from backend.core.auth import Principal
from backend.core.errors import Forbidden, InvalidInput, Unavailable
from interview_service.plan import DEFAULT_QUESTIONS
from interview_service.records import InterviewRecord
from interview_service.settings import InterviewSettings
from interview_service.voice.providers import QuestionDrafter

log = structlog.get_logger(__name__)


def user_id(principal: Principal, asked: object) -> str:
    """Whom the interview (and its TURN username) is for: with auth on, the caller."""
    if principal.anonymous:  # no auth configured: the client says who the candidate is
        if not isinstance(asked, str) or not asked:
            raise InvalidInput("user_id is required when auth is off", code="missing_user_id")
        return asked
    if asked not in (None, principal.sub):
        raise Forbidden("user_id must be your own id (or left out)", code="user_id_mismatch")
    return principal.sub


async def new_record(
    settings: InterviewSettings,
    owner: str,
    user_id: str,
    body: Mapping[str, Any],
    drafter: QuestionDrafter | None,
) -> InterviewRecord:
    """The record of a new interview, with its plan (its questions drafted if need be)."""
    questions, source = await _questions(settings, body, drafter)
    follow_ups = body.get("max_follow_ups")
    now = time.time()
    return InterviewRecord(
        id=uuid.uuid4().hex,
        user_id=user_id,
        owner=owner,
        role=body.get("role"),
        questions=questions,
        language=str(body.get("language") or "en"),
        max_duration_s=min(
            float(body.get("max_duration_s") or settings.interview_max_duration_s),
            settings.interview_max_duration_s,
        ),
        created_at=now,
        expires_at=now + settings.interview_connect_timeout_s,
        job_description=body.get("job_description"),
        questions_source=source,
        max_follow_ups=(
            settings.interview_max_follow_ups if follow_ups is None else int(follow_ups)
        ),
        rubric=[dict(criterion) for criterion in body.get("rubric") or []],
        record_audio=bool(body.get("record")),
        webhook_url=body.get("webhook_url") or None,
    )


async def _questions(
    settings: InterviewSettings, body: Mapping[str, Any], drafter: QuestionDrafter | None
) -> tuple[list[str], str]:
    """The plan's questions: given, drafted from the job description, or the default."""
    if body.get("questions"):
        return list(body["questions"]), "given"
    description = body.get("job_description")
    if not description or drafter is None:  # the local stack drafts nothing
        return list(DEFAULT_QUESTIONS), "default"
    began = time.perf_counter()
    try:
        async with asyncio.timeout(settings.interview_provider_timeout_s * 2):
            drafted = await drafter.draft(
                body.get("role"), description, language=str(body.get("language") or "en")
            )
    except Exception as exc:
        log.warning("question_drafting_failed", error=repr(exc)[:300])
        raise Unavailable(
            "the interviewer could not draft questions from the job description; "
            "try again, or pass questions",
            code="question_drafting_failed",
            retry_after_s=5,
        ) from exc
    log.info("questions_drafted", count=len(drafted), seconds=round(time.perf_counter() - began, 3))
    return drafted, "drafted"
