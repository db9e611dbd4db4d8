"""The interviewer on a call: the stages wired together.

listen (:mod:`.listener`: frames → VAD → turn-taking) → transcribe (:mod:`.transcribe`:
pieces begun at pauses) → decide (:mod:`.decide`: is the answer over? was that an
interruption?) → speak (:mod:`.speaker`: text → TTS → paced audio, cut to what was
played). This module reads what the listener hears, judges its pauses, calls the turn
over and keeps the plan's clock; the interviewer's lines, one at a time, prepared,
said, cut and recorded, are :mod:`.replies`'. It reports typed events (:mod:`.events`)
to the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import av
import numpy as np
import structlog

from interview_service.conversation_seam import EventSink, InterviewPlan
from interview_service.paced_audio import PacedSource
from interview_service.plan import CLOSING_LINE, PlanProgress
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
from interview_service.voice.providers import Turn
from interview_service.voice.replies import APOLOGY as APOLOGY  # named here too, as before
from interview_service.voice.replies import Replies
from interview_service.voice.stack import VoiceStack
from interview_service.voice.transcribe import Capture, Transcriber, text_of
from interview_service.voice.turn_taking import TurnDetector

log = structlog.get_logger(__name__)


class VoiceConversation:
    def __init__(self, plan: InterviewPlan, stack: VoiceStack) -> None:
        self.plan = plan
        self.stack = stack
        self.interviewer = stack.interviewer(plan)
        self.outbound = PacedSource()
        self.history: list[Turn] = []
        self.progress = PlanProgress(plan)  # questions asked, follow-ups, the clock
        self.replies = Replies(
            plan,
            stack,
            self.interviewer,
            self.outbound,
            history=self.history,
            progress=self.progress,
            elapsed=self._elapsed,
            send=self._send,
            spawn=self._spawn,
        )
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
        self._judging: asyncio.Task[Verdict | None] | None = None
        self._verdict: Verdict | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
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
        return self.replies.speaking

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
            self.replies.say(self.interviewer.opening(), question=0)
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
        complete = asyncio.ensure_future(self.replies.complete.wait())
        try:
            while True:
                item = asyncio.ensure_future(self.listener.heard.get())
                await asyncio.wait({item, complete}, return_when=asyncio.FIRST_COMPLETED)
                if not item.done():
                    item.cancel()
                    await self.replies.finished()
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
                        self.replies.drop_prepared()
                    case Ended() as ended:
                        await self._turn_over(ended)
                    case Interrupted(capture=capture, held_at=held_at):
                        self._spawn(self._check_interruption(capture, held_at))
        finally:
            complete.cancel()

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
                await self.replies.finished()
                if not self.detector.in_speech and not self._closing:
                    self._close()
                    return
            await asyncio.sleep(0.1)

    def _close(self) -> None:
        self._closing = True
        self._cancel_judging()
        self.replies.drop_prepared()
        self.replies.say(CLOSING_LINE, finished=True)

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
        if verdict.prepare and self.stack.preemptive and self.replies.current is None:
            words = text.result()
            if words:
                self.replies.reply_to(words, committed=False)
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
            self.replies.drop_prepared()
            self.replies.apologise("stt", exc)
            return
        metrics["stt_s"] = round(time.perf_counter() - began, 3)
        metrics["stt_pieces"] = len(pieces)
        if not text:
            self.replies.drop_prepared()
            return  # noise, not words: nothing to answer
        self._send(
            events.TranscriptLine("candidate", text, ended.capture.started_at, ended.last_voiced_at)
        )
        self.history.append(Turn("candidate", text))
        if self._closing:
            return  # the closing line is said or on its way: no reply
        if self._elapsed() >= self.plan.closing_at_s:  # (cue() would spend the warning)
            self.replies.drop_prepared()
            await self.replies.finished()
            self._close()
            return
        if self.replies.play_prepared(text, metrics, ended.last_voiced_at):
            return
        self.replies.drop_prepared()
        if self.replies.current is not None:  # still speaking (an apology): the reply follows
            await self.replies.finished()
        self.replies.reply_to(
            text, committed=True, metrics=metrics, stopped_at=ended.last_voiced_at
        )

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
        dropped, cut = self.replies.barge_in()
        self._send(events.BargeIn(dropped * 20, cut))
        log.info("barge_in", interview_id=self.plan.interview_id, dropped_ms=dropped * 20)

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
