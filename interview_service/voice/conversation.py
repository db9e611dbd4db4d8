"""The interviewer on a call: listen, decide, speak, with interview-grade turn-taking.

One :class:`VoiceConversation` per call (the ``Conversation`` of
:mod:`interview_service.media`). It reads every inbound frame, resamples it once
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
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import structlog

from interview_service.audio import PacedSource, Segment
from interview_service.media import EventSink, InterviewPlan
from interview_service.voice.local import split_sentences
from interview_service.voice.providers import (
    VAD_CHUNK,
    VAD_RATE,
    Interviewer,
    Reply,
    SpeechToText,
    TextToSpeech,
    Turn,
    VoiceActivity,
)
from interview_service.voice.turns import Signal, TurnConfig, TurnDetector

log = structlog.get_logger(__name__)

PREROLL_CHUNKS = 10  # 320 ms kept before speech starts, so first syllables are not lost
MAX_UTTERANCE_S = 60.0
APOLOGY = "Sorry, I had a problem on my side. Could you say that again?"


@dataclass(slots=True)
class VoiceStack:
    vad: Callable[[], VoiceActivity]
    stt: SpeechToText
    interviewer: Callable[[InterviewPlan], Interviewer]
    tts: TextToSpeech
    turns: TurnConfig = field(default_factory=TurnConfig)
    provider_timeout_s: float = 15.0
    observe: Callable[[str, float], None] | None = None  # (stage, seconds) → histograms


@dataclass(slots=True)
class Utterance:
    audio: np.ndarray
    started_at: float  # wall clock
    last_voiced_at: float  # wall clock of the last voiced chunk
    decided_at: float  # when the detector called the end of the turn


class VoiceConversation:
    def __init__(self, plan: InterviewPlan, stack: VoiceStack) -> None:
        self.plan = plan
        self.stack = stack
        self.interviewer = stack.interviewer(plan)
        self.outbound = PacedSource()
        self.frames_in = 0
        self.voiced_frames_in = 0
        self.history: list[Turn] = []
        self.turn_metrics: list[dict[str, Any]] = []
        self._utterances: asyncio.Queue[Utterance] = asyncio.Queue()
        self._reply: asyncio.Task[None] | None = None
        self._events: EventSink | None = None

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
        listener = asyncio.create_task(self._listen(inbound))
        try:
            await self._run_reply(self._speak_line(self.interviewer.opening(), question=0))
            while True:
                utterance = await self._utterances.get()
                outcome = Reply()
                await self._run_reply(self._respond(utterance, outcome))
                if outcome.finished:
                    await self.outbound.drained()
                    events.send({"type": "interview_complete"})
                    return
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

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

    # ---- listening ---------------------------------------------------------------------

    async def _listen(self, inbound: AsyncIterator[av.AudioFrame]) -> None:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=VAD_RATE)
        vad = self.stack.vad()
        detector = TurnDetector(self.stack.turns)
        pending = np.zeros(0, dtype=np.float32)
        preroll: deque[np.ndarray] = deque(maxlen=PREROLL_CHUNKS)
        spoken: list[np.ndarray] = []
        started_at = last_voiced = 0.0
        async for frame in inbound:
            self.frames_in += 1
            for converted in resampler.resample(frame):
                pending = np.concatenate([pending, converted.to_ndarray().reshape(-1)])
            while len(pending) >= VAD_CHUNK:
                chunk, pending = pending[:VAD_CHUNK], pending[VAD_CHUNK:]
                signal = detector.push(
                    vad.probability(chunk), interviewer_speaking=self._interviewer_speaking()
                )
                now = time.time()
                if detector.voiced:
                    self.voiced_frames_in += 1
                    last_voiced = now
                if signal in (Signal.SPEECH_STARTED, Signal.BARGE_IN):
                    spoken = [*preroll, chunk]
                    started_at = now - len(spoken) * 0.032
                    if signal is Signal.BARGE_IN:
                        self._barge_in()
                elif signal is Signal.END_OF_TURN:
                    spoken.append(chunk)
                    self._utterances.put_nowait(
                        Utterance(np.concatenate(spoken), started_at, last_voiced, now)
                    )
                    spoken = []
                elif detector.in_speech and len(spoken) * 0.032 < MAX_UTTERANCE_S:
                    spoken.append(chunk)
                preroll.append(chunk)

    def _interviewer_speaking(self) -> bool:
        return self.outbound.speaking or self._reply is not None

    def _barge_in(self) -> None:
        reply = self._reply
        if reply is not None and not reply.done():
            reply.cancel()
        dropped = self.outbound.flush()
        self._send({"type": "barge_in", "dropped_ms": dropped * 20})
        log.info("barge_in", interview_id=self.plan.interview_id, dropped_ms=dropped * 20)

    # ---- answering ---------------------------------------------------------------------

    async def _respond(self, utterance: Utterance, outcome: Reply) -> None:
        metrics: dict[str, Any] = {
            "end_of_utterance_s": round(utterance.decided_at - utterance.last_voiced_at, 3)
        }
        began = time.perf_counter()
        try:
            text = await asyncio.wait_for(
                self.stack.stt.transcribe(utterance.audio, language=self.plan.language),
                self.stack.provider_timeout_s,
            )
        except Exception as exc:
            await self._apologise("stt", exc)
            return
        metrics["stt_s"] = round(time.perf_counter() - began, 3)
        if not text:
            return  # noise, not words: nothing to answer
        self._transcript("candidate", text, utterance.started_at, utterance.last_voiced_at)
        self.history.append(Turn("candidate", text))
        await self._speak_reply(outcome, metrics, utterance.last_voiced_at)

    async def _speak_reply(
        self, outcome: Reply, metrics: dict[str, Any], candidate_stopped_at: float
    ) -> None:
        began = time.perf_counter()
        pieces: list[str] = []
        segments: list[tuple[str, Segment]] = []
        buffer = ""
        try:
            async with asyncio.timeout(self.stack.provider_timeout_s * 2):
                async for piece in self.interviewer.reply(self.history, outcome):
                    if not pieces:
                        metrics["llm_first_token_s"] = round(time.perf_counter() - began, 3)
                    pieces.append(piece)
                    buffer += piece
                    *complete, buffer = _sentences_and_rest(buffer)
                    for sentence in complete:
                        await self._synthesize(sentence, segments, metrics)
                if buffer.strip():
                    await self._synthesize(buffer.strip(), segments, metrics)
        except asyncio.CancelledError:
            self._interrupted(segments)
            self._record_turn(metrics, segments, candidate_stopped_at, interrupted=True)
            raise
        except Exception as exc:
            await self._apologise("llm_or_tts", exc)
            return
        if outcome.question_index is not None:
            self._send({"type": "question", "index": outcome.question_index})
        try:
            await self.outbound.drained()
        except asyncio.CancelledError:
            self._interrupted(segments)
            self._record_turn(metrics, segments, candidate_stopped_at, interrupted=True)
            raise
        text = "".join(pieces).strip()
        start = _first_sent(segments) or time.time()
        self._transcript("interviewer", text, start, time.time())
        self.history.append(Turn("interviewer", text))
        self._record_turn(metrics, segments, candidate_stopped_at, interrupted=False)

    def _record_turn(
        self,
        metrics: dict[str, Any],
        segments: list[tuple[str, Segment]],
        candidate_stopped_at: float,
        *,
        interrupted: bool,
    ) -> None:
        """One structlog line, one turn_metrics event, and the histograms, per turn."""
        first = _first_sent(segments)
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
        self, sentence: str, segments: list[tuple[str, Segment]], metrics: dict[str, Any]
    ) -> None:
        began = time.perf_counter()
        async for pcm in self.stack.tts.synthesize(sentence, language=self.plan.language):
            if "tts_first_byte_s" not in metrics:
                metrics["tts_first_byte_s"] = round(time.perf_counter() - began, 3)
            segments.append((sentence, self.outbound.enqueue_pcm(pcm)))

    async def _speak_line(self, text: str, *, question: int | None = None) -> None:
        segments: list[tuple[str, Segment]] = []
        try:
            await self._synthesize(text, segments, {})
            if question is not None:
                self._send({"type": "question", "index": question})
            await self.outbound.drained()
        except asyncio.CancelledError:
            self._interrupted(segments)
            raise
        self._transcript("interviewer", text, _first_sent(segments) or time.time(), time.time())
        self.history.append(Turn("interviewer", text))

    def _interrupted(self, segments: list[tuple[str, Segment]]) -> None:
        """The line as far as it was heard, marked interrupted."""
        heard: list[str] = []
        for sentence, segment in segments:
            if segment.sent == 0:
                break
            words = sentence.split()
            heard.extend(words[: max(1, round(len(words) * segment.played_fraction))])
            if segment.sent < segment.frames:
                break
        text = " ".join(heard)
        start = _first_sent(segments) or time.time()
        if text:
            self._transcript("interviewer", text, start, time.time(), interrupted=True)
            self.history.append(Turn("interviewer", text + " —"))

    async def _apologise(self, stage: str, exc: BaseException) -> None:
        log.warning("provider_failed", stage=stage, error=repr(exc)[:300])
        self._send({"type": "error", "stage": stage, "message": type(exc).__name__})
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.stack.provider_timeout_s):
                await self._speak_line(APOLOGY)

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


def _sentences_and_rest(text: str) -> list[str]:
    """Complete sentences, then the unfinished rest (possibly empty)."""
    parts = split_sentences(text)
    if not parts:
        return [""]
    if text.rstrip()[-1:] in ".!?" and text.endswith((" ", ".", "!", "?")):
        return [*parts, ""]
    return [*parts[:-1], parts[-1]]


def _first_sent(segments: list[tuple[str, Segment]]) -> float | None:
    for _, segment in segments:
        if segment.first_sent_at is not None:
            return segment.first_sent_at
    return None
