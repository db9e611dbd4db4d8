"""The interviewer on a call: listen, decide, speak, with interview-grade turn-taking.

One :class:`VoiceConversation` per call (the ``Conversation`` of
:mod:`interview_service.conversation_seam`). It reads every inbound frame, resamples it once
(48 kHz stereo to 16 kHz mono, one stateful resampler), runs VAD per 32 ms and the
turn detector; a finished answer goes to STT, the interviewer and TTS, sentence by
sentence, into the paced outbound source. Talking over the interviewer cancels the
reply, flushes queued audio and cuts the line to what was played.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import av
import structlog

from interview_service.conversation_seam import EventSink, InterviewPlan
from interview_service.paced_audio import PacedSource
from interview_service.plan import CLOSING_LINE, Cue, PlanProgress, time_left_line
from interview_service.voice.listener import Listener, ListenerFailed, Utterance
from interview_service.voice.providers import Reply, Turn
from interview_service.voice.spoken import Spoken, first_sent, sentences_and_rest
from interview_service.voice.stack import VoiceStack

log = structlog.get_logger(__name__)

PLAYOUT_MARGIN_S = 5.0  # beyond the queued audio, before playback counts as stalled
APOLOGY = "Sorry, I had a problem on my side. Could you say that again?"


class TimeUp(Exception):
    """The plan's closing time came while nobody was speaking."""


@dataclass(slots=True)
class Answer:
    """The candidate's turn: one or more utterances, transcribed, ready to be answered."""

    text: str
    stopped_at: float  # wall clock of the last voiced chunk
    metrics: dict[str, Any]


class VoiceConversation:
    def __init__(self, plan: InterviewPlan, stack: VoiceStack) -> None:
        self.plan = plan
        self.stack = stack
        self.interviewer = stack.interviewer(plan)
        self.outbound = PacedSource()
        self.history: list[Turn] = []
        self.turn_metrics: list[dict[str, Any]] = []
        self.progress = PlanProgress(plan)
        self._began = time.monotonic()
        self._reply: asyncio.Task[None] | None = None
        self._events: EventSink | None = None
        self._listener = Listener(
            plan,
            stack,
            self.interviewer,
            self.history,
            interviewer_speaking=self._interviewer_speaking,
            barge_in=self._barge_in,
        )
        # None on the queue: the listener failed, and the conversation must fail with it
        self._utterances = self._listener.utterances
        self._detector = self._listener.detector
        self._speech_started = self._listener.speech_started

    @property
    def frames_in(self) -> int:
        return self._listener.frames_in

    @property
    def voiced_frames_in(self) -> int:
        return self._listener.voiced_frames_in

    # ---- the loop ----------------------------------------------------------------------

    async def run(self, inbound: AsyncIterator[av.AudioFrame], events: EventSink) -> None:
        self._events = events
        events.send(
            {
                "type": "interviewer",
                "name": self.interviewer.name,
                "scripted": self.interviewer.scripted,
            }
        )
        listener = asyncio.create_task(self._listener.listen(inbound))
        self._began = time.monotonic()
        try:
            await self._run_reply(self._speak_line(self.interviewer.opening(), question=0))
            while True:
                try:
                    answer = await self._hear_answer()
                except TimeUp:
                    answer = None
                cue = self.progress.cue(time.monotonic() - self._began)
                if cue is Cue.CLOSE:  # the plan's time is up: a closing line, then the end
                    await self._run_reply(self._speak_line(CLOSING_LINE))
                    await self._played()
                    events.send({"type": "interview_complete", "reason": "time_up"})
                    return
                if answer is None:
                    continue
                outcome = Reply(may_follow_up=self.progress.may_follow_up())
                if cue is Cue.WARN:
                    left = self.progress.time_left_s(time.monotonic() - self._began)
                    outcome.time_warning = time_left_line(left)
                await self._run_reply(self._speak_reply(outcome, answer))
                self.progress.replied(outcome.question_index)
                if outcome.finished:
                    await self._played()
                    events.send({"type": "interview_complete"})
                    return
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            for task in list(self._listener.stt_tasks):
                task.cancel()

    async def _run_reply(self, coro: Any) -> None:
        """Run one reply as a task that barge-in may cancel; its cancellation is not ours."""
        self._reply = asyncio.create_task(coro)
        try:
            await asyncio.wait({self._reply})
        except asyncio.CancelledError:
            self._reply.cancel()
            raise
        finally:
            reply, self._reply = self._reply, None
        if not reply.cancelled() and reply.exception() is not None:
            raise reply.exception()  # type: ignore[misc]

    async def _played(self) -> None:
        """Until the queued speech has gone out; bounded, should the track stop pulling."""
        budget = self.outbound.queued_s + PLAYOUT_MARGIN_S
        try:
            async with asyncio.timeout(budget):
                await self.outbound.drained()
        except TimeoutError:
            log.warning(
                "outbound_stalled",
                interview_id=self.plan.interview_id,
                queued_s=round(self.outbound.queued_s, 2),
            )
            self.outbound.flush()

    def _interviewer_speaking(self) -> bool:
        return self.outbound.speaking or self._reply is not None

    def _barge_in(self) -> None:
        reply = self._reply
        if reply is not None and not reply.done():
            reply.cancel()
        dropped = self.outbound.flush()
        self._send({"type": "barge_in", "dropped_ms": dropped * 20})
        log.info("barge_in", interview_id=self.plan.interview_id, dropped_ms=dropped * 20)

    # ---- hearing the answer ------------------------------------------------------------

    async def _hear_answer(self) -> Answer | None:
        """The candidate's whole answer: utterances until they stop and it reads finished.

        STT runs outside the reply task, so speech while it runs is the answer going on,
        not an interruption; each utterance's line is kept as soon as it is transcribed.
        """
        texts: list[str] = []
        metrics: dict[str, Any] = {}
        stopped_at = 0.0
        while True:
            utterance = await self._next_utterance(continuing=bool(texts))
            if utterance is None:  # it was a cough, not more of the answer
                return Answer(" ".join(texts), stopped_at, metrics)
            metrics["end_of_utterance_s"] = round(
                utterance.decided_at - utterance.last_voiced_at, 3
            )
            began = time.perf_counter()
            try:
                # what is left of STT once the turn ended: pieces begun at pauses are
                # often done by then
                parts = await asyncio.gather(*utterance.pieces)
            except Exception as exc:
                for piece in utterance.pieces:
                    piece.cancel()
                await self._apologise("stt", exc)
                return None
            text = " ".join(part for part in parts if part)
            metrics["stt_s"] = round(time.perf_counter() - began, 3)
            metrics["stt_pieces"] = len(utterance.pieces)
            if text:
                self._transcript("candidate", text, utterance.started_at, utterance.last_voiced_at)
                self.history.append(Turn("candidate", text))
                texts.append(text)
                stopped_at = utterance.last_voiced_at
            if not texts:
                return None  # noise, not words: nothing to answer
            precheck = utterance.precheck if len(texts) == 1 else None
            going_on = self._candidate_going_on()
            if (going_on or not await self._reads_finished(texts, metrics, precheck)) and (
                await self._speech_resumes()
            ):
                continue
            return Answer(" ".join(texts), stopped_at, metrics)

    async def _next_utterance(self, *, continuing: bool) -> Utterance | None:
        if not continuing:
            utterance = await self._utterance_or_time_up()
            if utterance is None:
                raise ListenerFailed("the listener stopped; see listener_failed in the log")
            return utterance
        # More of an answer: it may turn out too short to be a turn, so wait only while
        # the candidate is speaking, or not yet silent for a whole window.
        quiet_s = 0.0
        step = 0.1
        while quiet_s < self.stack.turns.end_silence_s + 0.5:
            if not self._utterances.empty():
                return await self._next_utterance(continuing=False)
            await asyncio.sleep(step)
            quiet_s = 0.0 if self._detector.in_speech else quiet_s + step
        return None

    async def _utterance_or_time_up(self) -> Utterance | None:
        """The next utterance; TimeUp once the plan's closing time has come and the
        candidate is silent (one who is speaking then is heard to the end of it)."""
        closing_at = self._began + self.plan.closing_at_s
        while True:
            left = closing_at - time.monotonic()
            if left <= 0 and not self._candidate_going_on():
                raise TimeUp
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(left, 0.1)):
                    return await self._utterances.get()

    def _candidate_going_on(self) -> bool:
        return self._detector.in_speech or not self._utterances.empty()

    async def _reads_finished(
        self,
        texts: list[str],
        metrics: dict[str, Any],
        precheck: asyncio.Task[bool | None] | None = None,
    ) -> bool:
        """The semantic end-of-turn check; a slow or failing check counts as finished.

        ``precheck``, begun in the final pause on the same words, is used when it has a
        verdict: then the check costs the turn nothing.
        """
        if self.stack.semantic_grace_s <= 0:
            return True
        self._speech_started.clear()
        began = time.perf_counter()
        verdict = None
        if precheck is not None and not precheck.cancelled():
            verdict = await precheck
        if verdict is not None:
            finished = verdict
            metrics["semantic_precheck"] = True
        else:
            try:
                async with asyncio.timeout(self.stack.semantic_timeout_s):
                    finished = await self.interviewer.is_complete(self.history, " ".join(texts))
            except Exception as exc:
                log.info("semantic_check_skipped", error=repr(exc)[:200])
                finished = True
        metrics["semantic_check_s"] = round(time.perf_counter() - began, 3)
        if not finished:
            metrics["semantic_wait"] = True
        return finished

    async def _speech_resumes(self) -> bool:
        """Whether the candidate speaks again within the grace period."""
        if self._candidate_going_on() or self._speech_started.is_set():
            return True
        try:
            async with asyncio.timeout(self.stack.semantic_grace_s):
                await self._speech_started.wait()
        except TimeoutError:
            return False
        return True

    # ---- answering ---------------------------------------------------------------------

    async def _speak_reply(self, outcome: Reply, answer: Answer) -> None:
        metrics = answer.metrics
        began = time.perf_counter()
        pieces: list[str] = []
        spoken: list[Spoken] = []
        buffer = ""
        try:
            if outcome.time_warning:  # "we have about two minutes left", before the reply
                pieces.append(outcome.time_warning + " ")
                await self._synthesize(outcome.time_warning, spoken, metrics)
                began = time.perf_counter()
            # aclosing: a cancelled reply closes the model's stream now, not at GC
            stream = contextlib.aclosing(self.interviewer.reply(self.history, outcome))
            async with asyncio.timeout(self.stack.provider_timeout_s * 2), stream as pieces_in:
                async for piece in pieces_in:
                    if "llm_first_token_s" not in metrics:
                        metrics["llm_first_token_s"] = round(time.perf_counter() - began, 3)
                    pieces.append(piece)
                    buffer += piece
                    *complete, buffer = sentences_and_rest(buffer)
                    for sentence in complete:
                        await self._synthesize(sentence, spoken, metrics)
                if buffer.strip():
                    await self._synthesize(buffer.strip(), spoken, metrics)
        except asyncio.CancelledError:
            self._interrupted(spoken)
            self._record_turn(metrics, spoken, answer.stopped_at, interrupted=True)
            raise
        except Exception as exc:
            self._interrupted(spoken)
            await self._apologise("llm_or_tts", exc)
            outcome.finished = False
            return
        if outcome.question_index is not None:
            self._send({"type": "question", "index": outcome.question_index})
        try:
            await self._played()
        except asyncio.CancelledError:
            self._interrupted(spoken)
            self._record_turn(metrics, spoken, answer.stopped_at, interrupted=True)
            raise
        text = "".join(pieces).strip()
        start = first_sent(spoken) or time.time()
        self._transcript("interviewer", text, start, time.time())
        self.history.append(Turn("interviewer", text))
        self._record_turn(metrics, spoken, answer.stopped_at, interrupted=False)

    def _record_turn(
        self,
        metrics: dict[str, Any],
        spoken: list[Spoken],
        candidate_stopped_at: float,
        *,
        interrupted: bool,
    ) -> None:
        """One structlog line, one turn_metrics event, and the histograms, per turn."""
        first = first_sent(spoken)
        if first is not None:
            metrics["voice_to_voice_s"] = round(first - candidate_stopped_at, 3)
        metrics["interrupted"] = interrupted
        metrics["turn"] = len(self.turn_metrics) + 1
        self.turn_metrics.append(metrics)
        self._send({"type": "turn_metrics", "metrics": metrics})
        log.info("turn", interview_id=self.plan.interview_id, **metrics)
        if self.stack.observe is not None:
            for stage, value in metrics.items():
                if stage.endswith("_s") and isinstance(value, int | float):
                    self.stack.observe(stage.removesuffix("_s"), float(value))

    async def _synthesize(
        self, sentence: str, spoken: list[Spoken], metrics: dict[str, Any]
    ) -> None:
        began = time.perf_counter()
        line = Spoken(sentence)
        spoken.append(line)
        speech = self.stack.tts.synthesize(sentence, language=self.plan.language)
        async with contextlib.aclosing(speech) as chunks:
            async for pcm in chunks:
                if "tts_first_byte_s" not in metrics:
                    metrics["tts_first_byte_s"] = round(time.perf_counter() - began, 3)
                line.segments.append(self.outbound.enqueue_pcm(pcm))

    async def _speak_line(self, text: str, *, question: int | None = None) -> None:
        spoken: list[Spoken] = []
        try:
            await self._synthesize(text, spoken, {})
            if question is not None:
                self._send({"type": "question", "index": question})
            await self._played()
        except asyncio.CancelledError:
            self._interrupted(spoken)
            raise
        self._transcript("interviewer", text, first_sent(spoken) or time.time(), time.time())
        self.history.append(Turn("interviewer", text))

    def _interrupted(self, spoken: list[Spoken]) -> None:
        """The line as far as it was heard, marked interrupted."""
        heard: list[str] = []
        for line in spoken:
            if line.sent == 0:
                break
            words = line.sentence.split()
            fraction = line.sent / line.frames if line.frames else 1.0
            heard.extend(words[: max(1, round(len(words) * fraction))])
            if line.sent < line.frames:
                break
        text = " ".join(heard)
        start = first_sent(spoken) or time.time()
        if text:
            self._transcript("interviewer", text, start, time.time(), interrupted=True)
            self.history.append(Turn("interviewer", text + " —"))

    async def _apologise(self, stage: str, exc: BaseException) -> None:
        log.warning(
            "provider_failed",
            interview_id=self.plan.interview_id,
            stage=stage,
            error=repr(exc)[:300],
        )
        self._send({"type": "error", "stage": stage, "message": type(exc).__name__})
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.stack.provider_timeout_s):
                await self._speak_line(APOLOGY)

    # ---- results -----------------------------------------------------------------------

    @property
    def will_evaluate(self) -> bool:
        return self.stack.results is not None and any(t.role == "candidate" for t in self.history)

    # ---- events ------------------------------------------------------------------------

    def _transcript(
        self, role: str, text: str, start: float, end: float, *, interrupted: bool = False
    ) -> None:
        self._send(
            {
                "type": "transcript",
                "item": {
                    "id": uuid.uuid4().hex[:12],
                    "role": role,
                    "text": text,
                    "start": round(start, 3),
                    "end": round(end, 3),
                    "interrupted": interrupted,
                    "final": True,
                },
            }
        )

    def _send(self, event: dict[str, Any]) -> None:
        if self._events is not None:
            self._events.send(event)
