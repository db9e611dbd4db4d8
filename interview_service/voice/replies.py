"""The interviewer's lines on a call: prepared, let out, said, cut, recorded.

One line at a time (:class:`Speech`): a reply may be prepared while the candidate may
still go on (it waits behind its gate, and is thrown away if they do), the greeting and
the closing line are said at once. A line cancelled while it plays is cut to what the
candidate heard, in the transcript and in the history the interviewer reads. Each reply
records the turn's metrics. The speak stage itself is :mod:`.speaker`; the conversation
(:mod:`.conversation`) decides when a line is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from interview_service.conversation_seam import InterviewPlan
from interview_service.paced_audio import PacedSource
from interview_service.plan import Cue, PlanProgress, time_left_line
from interview_service.voice import events
from interview_service.voice.providers import Interviewer, Reply, Turn
from interview_service.voice.speaker import Speaker, heard
from interview_service.voice.spoken import Spoken, first_sent
from interview_service.voice.stack import VoiceStack

log = structlog.get_logger(__name__)

APOLOGY = "Sorry, I had a problem on my side. Could you say that again?"

Send = Callable[[events.VoiceEvent], None]
Spawn = Callable[[Any], "asyncio.Task[Any]"]


@dataclass(slots=True)
class Speech:
    """One line of the interviewer's on its way out: maybe prepared before it may play."""

    task: asyncio.Task[None] | None = None
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    spoken: list[Spoken] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    answer: str | None = None  # the candidate's words it answers (None: not a reply)

    @property
    def committed(self) -> bool:
        return self.gate.is_set()


class Replies:
    """The line being said or prepared (``current``), and what saying it leaves behind:
    the history, the transcript's interviewer lines, the turn metrics, the plan moved on."""

    def __init__(
        self,
        plan: InterviewPlan,
        stack: VoiceStack,
        interviewer: Interviewer,
        outbound: PacedSource,
        *,
        history: list[Turn],
        progress: PlanProgress,
        elapsed: Callable[[], float],
        send: Send,
        spawn: Spawn,
    ) -> None:
        self.plan = plan
        self.stack = stack
        self.interviewer = interviewer
        self.outbound = outbound
        self.speaker = Speaker(stack.tts, plan.language, outbound)
        self.history = history
        self.progress = progress
        self.turn_metrics: list[dict[str, Any]] = []
        self.current: Speech | None = None  # the line being said, or prepared
        self.complete = asyncio.Event()  # the plan's last line has been said
        self._elapsed = elapsed
        self._send = send
        self._spawn = spawn

    @property
    def speaking(self) -> bool:
        speech = self.current
        return self.outbound.speaking or (speech is not None and speech.committed)

    async def finished(self) -> None:
        """Until the line being said (if any) is over."""
        speech = self.current
        if speech is not None and speech.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await speech.task

    def drop_prepared(self) -> None:
        """The candidate went on: a reply prepared on the earlier words is thrown away."""
        speech = self.current
        if speech is not None and not speech.committed and speech.task is not None:
            speech.task.cancel()
            self.current = None

    def play_prepared(self, answer: str, metrics: dict[str, Any], stopped_at: float) -> bool:
        """The turn is over on ``answer``: a reply prepared on those very words may play."""
        speech = self.current
        if speech is None or speech.committed or speech.answer != answer:
            return False
        metrics["preempted"] = True
        speech.metrics.update(metrics)
        speech.metrics["stopped_at"] = stopped_at
        speech.gate.set()
        return True

    def barge_in(self) -> tuple[int, str]:
        """A real interruption: the line stops now. Returns the 20 ms frames dropped and
        what of the line the candidate heard."""
        speech = self.current
        cut = heard(speech.spoken) if speech is not None else ""
        if speech is not None and speech.task is not None:
            speech.task.cancel()
        return self.outbound.flush(), cut

    def reply_to(
        self,
        answer: str,
        *,
        committed: bool,
        metrics: dict[str, Any] | None = None,
        stopped_at: float = 0.0,
    ) -> None:
        outcome = Reply(may_follow_up=self.progress.may_follow_up())
        if self.progress.cue(self._elapsed()) is Cue.WARN:  # "about two minutes left"
            outcome.time_warning = time_left_line(self.progress.time_left_s(self._elapsed()))
        history = [*self.history]
        if not committed:  # prepared early: the candidate's line is not in history yet
            history.append(Turn("candidate", answer))
        speech = Speech(answer=answer, metrics=dict(metrics or {}))
        if stopped_at:
            speech.metrics["stopped_at"] = stopped_at
        if committed:
            speech.gate.set()
        stream: AsyncIterator[str] = self.interviewer.reply(history, outcome)
        if outcome.time_warning:
            stream = _after(outcome.time_warning, stream)
        speech.task = self._spawn(self._speak(speech, stream, outcome))
        self.current = speech

    def say(self, *texts: str, question: int | None = None, finished: bool = False) -> None:
        """A line that is not a reply (the greeting, the closing, an apology): said now."""
        speech = Speech()
        speech.gate.set()
        outcome = Reply(question_index=question, finished=finished)
        speech.task = self._spawn(self._speak(speech, _lines(*texts), outcome))
        self.current = speech

    async def _speak(self, speech: Speech, stream: AsyncIterator[str], outcome: Reply) -> None:
        """One line: said, played, recorded; cut to what was heard if cancelled."""
        metrics = speech.metrics
        try:
            try:
                async with asyncio.timeout(self.stack.provider_timeout_s * 2):
                    text = await self.speaker.say(
                        _closing(stream), speech.spoken, metrics, speech.gate
                    )
            except Exception as exc:  # a timeout too
                raise _Failed(exc) from exc
            if outcome.question_index is not None:
                self._send(events.QuestionAsked(outcome.question_index))
            await self.speaker.played(self.plan.interview_id)
        except asyncio.CancelledError:
            if speech is self.current:
                self.current = None
            if speech.committed:
                self._cut(speech)
                if speech.answer is not None:  # a reply cut short still moved the plan on
                    self.progress.replied(outcome.question_index)
            raise
        except _Failed as failed:
            if speech is self.current:
                self.current = None
            self._cut(speech, record=False)
            self.apologise("llm_or_tts", failed.exc)
            return
        start = first_sent(speech.spoken) or time.time()
        self._send(events.TranscriptLine("interviewer", text, start, time.time()))
        self.history.append(Turn("interviewer", text))
        if speech.answer is not None:
            self._record_turn(metrics, speech.spoken, interrupted=False)
            self.progress.replied(outcome.question_index)
        if speech is self.current:
            self.current = None
        if outcome.finished:
            self.complete.set()

    def _cut(self, speech: Speech, *, record: bool = True) -> None:
        """The line as far as the candidate heard it: in the transcript, marked, and all
        the history (the interviewer's language model) keeps of it."""
        text = heard(speech.spoken)
        if text:
            start = first_sent(speech.spoken) or time.time()
            self._send(events.TranscriptLine("interviewer", text, start, time.time(), True))
            self.history.append(Turn("interviewer", text + " —"))
        if speech.answer is not None and record:
            self._record_turn(speech.metrics, speech.spoken, interrupted=True)

    def _record_turn(
        self, metrics: dict[str, Any], spoken: list[Spoken], *, interrupted: bool
    ) -> None:
        """One structlog line, one turn_metrics event, and the histograms, per turn."""
        stopped_at = metrics.pop("stopped_at", None)
        first = first_sent(spoken)
        if first is not None and stopped_at:
            metrics["voice_to_voice_s"] = round(first - stopped_at, 3)
        metrics["interrupted"] = interrupted
        metrics["turn"] = len(self.turn_metrics) + 1
        self.turn_metrics.append(metrics)
        self._send(events.TurnMetrics(metrics))
        log.info("turn", interview_id=self.plan.interview_id, **metrics)
        if self.stack.observe is not None:
            for stage, value in metrics.items():
                if stage.endswith("_s") and isinstance(value, int | float):
                    self.stack.observe(stage.removesuffix("_s"), float(value))

    def apologise(self, stage: str, exc: BaseException) -> None:
        log.warning(
            "provider_failed",
            interview_id=self.plan.interview_id,
            stage=stage,
            error=repr(exc)[:300],
        )
        self._send(events.ProviderFailed(stage, type(exc).__name__))
        if self.current is None:
            self.say(APOLOGY)


class _Failed(Exception):
    def __init__(self, exc: BaseException) -> None:
        super().__init__(repr(exc))
        self.exc = exc


async def _lines(*texts: str) -> AsyncIterator[str]:
    for text in texts:
        yield text


async def _after(first: str, stream: AsyncIterator[str]) -> AsyncIterator[str]:
    """``first`` as a sentence of its own, then the stream (the plan's time warning)."""
    yield first + " "
    async for piece in _closing(stream):
        yield piece


async def _closing(stream: AsyncIterator[str]) -> AsyncIterator[str]:
    """The stream, closed as soon as its reader stops: a cancelled reply closes the
    language model's stream now, not when it is collected."""
    aclose = getattr(stream, "aclose", None)
    try:
        async for piece in stream:
            yield piece
    finally:
        if aclose is not None:
            await aclose()
