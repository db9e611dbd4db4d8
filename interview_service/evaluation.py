"""Rubric scoring after a call, in a task of its own per call, bounded in time; the
record says how it went. At shutdown the tasks get a few seconds, then are dropped."""

from __future__ import annotations

import asyncio
import time

import structlog

from interview_service.calls import Call
from interview_service.voice.conversation import VoiceConversation
from interview_service.voice.providers import ResultsWriter, Turn

log = structlog.get_logger(__name__)

SHUTDOWN_WAIT_S = 5.0


class Evaluations:
    def __init__(self, provider_timeout_s: float) -> None:
        self._timeout_s = provider_timeout_s * 4  # a re-ask may double the time
        self._tasks: set[asyncio.Task[None]] = set()

    def begin(self, call: Call) -> asyncio.Task[None] | None:
        """Score the finished call when its conversation can; its task, or None."""
        conversation = call.conversation
        if not (isinstance(conversation, VoiceConversation) and conversation.will_evaluate):
            return None
        call.record.evaluation = "pending"
        writer = conversation.stack.results
        assert writer is not None  # will_evaluate says there is one
        task = asyncio.get_running_loop().create_task(self._evaluate(call, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _evaluate(self, call: Call, writer: ResultsWriter) -> None:
        """Scored from the record's transcript, the one the results and the report show,
        so every quote can be found there."""
        record = call.record
        began = time.perf_counter()
        plan = {
            "role": record.role,
            "questions": record.questions,
            "language": record.language,
            "rubric": record.rubric,
        }
        transcript = [Turn(line.role, line.text) for line in record.transcript]
        try:
            async with asyncio.timeout(self._timeout_s):
                scored = await writer.evaluate(plan, transcript)
        except Exception as exc:
            record.evaluation = "failed"
            log.warning("evaluation_failed", interview_id=record.id, error=repr(exc)[:300])
        else:
            record.summary, record.scores = scored.summary, scored.scores
            record.unscored, record.evaluation_notes = scored.unscored, scored.notes
            record.evaluation = "ready"
            log.info(
                "evaluation_ready",
                interview_id=record.id,
                scored=len(scored.scores),
                unscored=len(scored.unscored),
                seconds=round(time.perf_counter() - began, 3),
            )
        await call.save()

    async def close(self) -> None:
        if self._tasks:  # a few seconds to finish scoring, then they are dropped
            await asyncio.wait(set(self._tasks), timeout=SHUTDOWN_WAIT_S)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
