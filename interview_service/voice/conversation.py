"""The interviewer on a call: the stages wired together.

listen (:mod:`.listener`: frames → VAD → turn-taking) → transcribe (:mod:`.transcribe`:
pieces begun at pauses) → decide (:mod:`.decide`: is the answer over? was that an
interruption?) → speak (:mod:`.speaker`: text → TTS → paced audio, cut to what was
played). This module reads what the listener hears and runs one reply at a time; it
reports typed events (:mod:`.events`) to the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import structlog

from interview_service.conversation_seam import EventSink, InterviewPlan
from interview_service.paced_audio import PacedSource
from interview_service.plan import CLOSING_LINE, Cue, PlanProgress, time_left_line
from interview_service.voice import events
from interview_service.voice.decide import Verdict, is_backchannel
from interview_service.voice.listener import (
    Ended,
    Interrupted,
    Listener,
    ListenerFailed,
    Paused,
    Resumed,
    Started,
)
from interview_service.voice.providers import Reply, Turn
from interview_service.voice.speaker import Speaker, heard
from interview_service.voice.spoken import Spoken, first_sent
from interview_service.voice.stack import VoiceStack
from interview_service.voice.transcribe import Capture, Transcriber, text_of
from interview_service.voice.turn_taking import TurnDetector

log = structlog.get_logger(__name__)

APOLOGY = "Sorry, I had a problem on my side. Could you say that again?"


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


class VoiceConversation:
    def __init__(self, plan: InterviewPlan, stack: VoiceStack) -> None:
        self.plan = plan
        self.stack = stack
        self.interviewer = stack.interviewer(plan)
        self.outbound = PacedSource()
        self.history: list[Turn] = []
        self.turn_metrics: list[dict[str, Any]] = []
        self.speaker = Speaker(stack.tts, plan.language, self.outbound)
        self.detector = TurnDetector(stack.turns)
        self.transcriber = Transcriber(plan, stack.stt, stack.provider_timeout_s)
        self.judge = stack.end_of_turn(self.interviewer)
        self.listener = Listener(
            stack.vad(),
            self.detector,
            self.transcriber,
            self,
            early_stt_s=stack.early_stt_s,
            interview_id=plan.interview_id,
        )
        self._events: EventSink | None = None
        self._speech: Speech | None = None  # the line being said, or prepared
        self._judging: asyncio.Task[Verdict | None] | None = None
        self._verdict: Verdict | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._complete = asyncio.Event()
        self.progress = PlanProgress(plan)  # questions asked, follow-ups, the clock
        self._began = time.monotonic()
        self._closing = False  # the plan's time is up: the closing line is said or due

    @property
    def frames_in(self) -> int:
        return self.listener.frames_in

    @property
    def voiced_frames_in(self) -> int:
        return self.listener.voiced_frames_in

    # ---- what the listener needs of the speaking side ---------------------------------

    @property
    def speaking(self) -> bool:
        speech = self._speech
        return self.outbound.speaking or (speech is not None and speech.committed)

    def hold(self) -> None:
        self.outbound.hold()

    def release(self) -> None:
        self.outbound.release()

    # ---- the loop ----------------------------------------------------------------------

    async def run(self, inbound: AsyncIterator[av.AudioFrame], events_out: EventSink) -> None:
        self._events = events_out
        self._send(events.InterviewerChosen(self.interviewer.name, self.interviewer.scripted))
        listening = asyncio.create_task(self.listener.listen(inbound))
        self._began = time.monotonic()
        self._spawn(self._clock())
        try:
            self._say(_lines(self.interviewer.opening()), question=0)
            await self._decide()
            self._send(events.InterviewComplete("time_up" if self._closing else None))
        finally:
            listening.cancel()
            for task in [*self._tasks, *self.transcriber.tasks]:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=5)

    async def _decide(self) -> None:
        """What the listener heard, one item at a time, until the interview is complete."""
        complete = asyncio.ensure_future(self._complete.wait())
        try:
            while True:
                item = asyncio.ensure_future(self.listener.heard.get())
                await asyncio.wait({item, complete}, return_when=asyncio.FIRST_COMPLETED)
                if not item.done():
                    item.cancel()
                    await self._finished_speaking()
                    return
                match item.result():
                    case None:
                        raise ListenerFailed("the listener stopped; see listener_failed in the log")
                    case Started(at=at):
                        self._send(events.SpeechStarted(at))
                    case Paused(capture=capture, speech=speech) if self._unsettled():
                        self._judging = self._spawn(self._judge(capture, speech))
                    case Paused():
                        pass  # judged already: confident, or the words read unfinished
                    case Resumed():
                        self._cancel_judging()
                        self._drop_prepared()
                    case Ended() as ended:
                        await self._turn_over(ended)
                    case Interrupted(capture=capture, held_at=held_at):
                        self._spawn(self._check_interruption(capture, held_at))
        finally:
            complete.cancel()

    async def _finished_speaking(self) -> None:
        speech = self._speech
        if speech is not None and speech.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await speech.task

    # ---- the plan's clock --------------------------------------------------------------

    def _elapsed(self) -> float:
        return time.monotonic() - self._began

    async def _clock(self) -> None:
        """At the plan's closing time, the closing line: once the candidate is silent (one
        who is speaking then is heard to the end, and their turn gets the closing line)
        and the interviewer's line in progress has played."""
        await asyncio.sleep(max(0.0, self.plan.closing_at_s - self._elapsed()))
        while not self._closing:
            if not self.detector.in_speech:
                await self._finished_speaking()
                if not self.detector.in_speech and not self._closing:
                    self._close()
                    return
            await asyncio.sleep(0.1)

    def _close(self) -> None:
        self._closing = True
        self._cancel_judging()
        self._drop_prepared()
        self._say(_lines(CLOSING_LINE), finished=True)

    # ---- deciding ----------------------------------------------------------------------

    async def _judge(self, capture: Capture, speech: np.ndarray) -> Verdict | None:
        """At a pause: how much silence ends the turn; prepare the reply when it reads done."""
        text = asyncio.ensure_future(text_of(capture.so_far()))
        try:
            verdict = await self.judge.judge(speech, text, self.history)
        except Exception as exc:  # STT failed: the end of the turn will say so
            log.info("end_of_turn_judge_failed", error=repr(exc)[:200])
            return None
        finally:
            if not text.done():
                text.cancel()  # a judge that did not need the words
        self._verdict = verdict
        self.detector.end_after(verdict.end_after_s)
        if verdict.prepare and self.stack.preemptive and self._speech is None:
            words = text.result()
            if words:
                self._reply_to(words, committed=False)
        return verdict

    def _unsettled(self) -> bool:
        """Whether this pause is worth judging (again): only when nothing is being
        judged and the last verdict was unsure (the words finished, the model doubtful)."""
        if self._judging is not None and not self._judging.done():
            return False
        verdict = self._verdict
        return verdict is None or (verdict.prepare and not verdict.finished)

    def _cancel_judging(self) -> None:
        if self._judging is not None:
            self._judging.cancel()
            self._judging = None
        self._verdict = None

    def _drop_prepared(self) -> None:
        """The candidate went on: a reply prepared on the earlier words is thrown away."""
        speech = self._speech
        if speech is not None and not speech.committed and speech.task is not None:
            speech.task.cancel()
            self._speech = None

    async def _turn_over(self, ended: Ended) -> None:
        verdict = self._verdict
        self._judging = None
        self._verdict = None
        metrics: dict[str, Any] = {
            "end_of_utterance_s": round(ended.decided_at - ended.last_voiced_at, 3),
            "turn_model": self.judge.name,
        }
        if verdict is not None:
            metrics["end_of_turn_probability"] = verdict.probability
            metrics["end_of_turn_judge_s"] = round(verdict.seconds, 3)
        began = time.perf_counter()
        pieces = ended.capture.pieces
        try:
            text = await text_of(pieces)
        except Exception as exc:
            self._drop_prepared()
            self._apologise("stt", exc)
            return
        metrics["stt_s"] = round(time.perf_counter() - began, 3)
        metrics["stt_pieces"] = len(pieces)
        if not text:
            self._drop_prepared()
            return  # noise, not words: nothing to answer
        self._send(
            events.TranscriptLine("candidate", text, ended.capture.started_at, ended.last_voiced_at)
        )
        self.history.append(Turn("candidate", text))
        if self._closing:
            return  # the closing line is said or on its way: no reply
        if self._elapsed() >= self.plan.closing_at_s:  # (cue() would spend the warning)
            self._drop_prepared()
            await self._finished_speaking()
            self._close()
            return
        speech = self._speech
        if speech is not None and not speech.committed and speech.answer == text:
            metrics["preempted"] = True
            speech.metrics.update(metrics)
            speech.metrics["stopped_at"] = ended.last_voiced_at
            speech.gate.set()
            return
        self._drop_prepared()
        if self._speech is not None:  # still speaking (an apology): the reply follows
            await self._finished_speaking()
        self._reply_to(text, committed=True, metrics=metrics, stopped_at=ended.last_voiced_at)

    async def _check_interruption(self, capture: Capture, held_at: float) -> None:
        """Speech over the interviewer long enough to matter: its words decide."""
        capture.commit(self.transcriber)
        try:
            words = await text_of(capture.pieces)
        except Exception:
            words = "?"  # cannot tell: yield to the candidate
        # the closing line is not interrupted: time is up whatever is said over it
        real = bool(words) and not is_backchannel(words) and not self._closing
        self.detector.settle_interruption(real=real)
        if not real:
            capture.abandon()
            self.outbound.release()
            held_ms = round((time.time() - held_at) * 1000)
            self._send(events.FalseInterruption(held_ms, words))
            log.info("false_interruption", interview_id=self.plan.interview_id, words=words)
            return
        speech = self._speech
        cut = heard(speech.spoken) if speech is not None else ""
        if speech is not None and speech.task is not None:
            speech.task.cancel()
        dropped = self.outbound.flush()
        self._send(events.BargeIn(dropped * 20, cut))
        log.info("barge_in", interview_id=self.plan.interview_id, dropped_ms=dropped * 20)

    # ---- speaking ----------------------------------------------------------------------

    def _reply_to(
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
        self._speech = speech

    def _say(
        self, lines: AsyncIterator[str], *, question: int | None = None, finished: bool = False
    ) -> None:
        speech = Speech()
        speech.gate.set()
        outcome = Reply(question_index=question, finished=finished)
        speech.task = self._spawn(self._speak(speech, lines, outcome))
        self._speech = speech

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
            if speech is self._speech:
                self._speech = None
            if speech.committed:
                self._cut(speech)
                if speech.answer is not None:  # a reply cut short still moved the plan on
                    self.progress.replied(outcome.question_index)
            raise
        except _Failed as failed:
            if speech is self._speech:
                self._speech = None
            self._cut(speech, record=False)
            self._apologise("llm_or_tts", failed.exc)
            return
        start = first_sent(speech.spoken) or time.time()
        self._send(events.TranscriptLine("interviewer", text, start, time.time()))
        self.history.append(Turn("interviewer", text))
        if speech.answer is not None:
            self._record_turn(metrics, speech.spoken, interrupted=False)
            self.progress.replied(outcome.question_index)
        if speech is self._speech:
            self._speech = None
        if outcome.finished:
            self._complete.set()

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

    def _apologise(self, stage: str, exc: BaseException) -> None:
        log.warning(
            "provider_failed",
            interview_id=self.plan.interview_id,
            stage=stage,
            error=repr(exc)[:300],
        )
        self._send(events.ProviderFailed(stage, type(exc).__name__))
        if self._speech is None:
            self._say(_lines(APOLOGY))

    # ---- results -----------------------------------------------------------------------

    @property
    def will_evaluate(self) -> bool:
        return self.stack.results is not None and any(t.role == "candidate" for t in self.history)

    # ---- plumbing ----------------------------------------------------------------------

    def _send(self, event: events.VoiceEvent) -> None:
        if self._events is not None:
            self._events.send(event)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


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
