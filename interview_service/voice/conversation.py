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
import math
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import structlog

from interview_service.conversation_seam import EventSink, InterviewPlan
from interview_service.paced_audio import PacedSource, Segment
from interview_service.voice.local import split_sentences
from interview_service.voice.providers import (
    VAD_CHUNK,
    VAD_RATE,
    Interviewer,
    Reply,
    ResultsWriter,
    SpeechToText,
    TextToSpeech,
    Turn,
    VoiceActivity,
)
from interview_service.voice.turn_taking import CHUNK_S, Signal, TurnDetector, TurnTakingConfig

log = structlog.get_logger(__name__)

PREROLL_CHUNKS = 10  # 320 ms kept before speech starts, so first syllables are not lost
PLAYOUT_MARGIN_S = 5.0  # beyond the queued audio, before playback counts as stalled
MAX_PIECE_S = 30.0  # speech with no pause is cut for STT every this many seconds
SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+")
APOLOGY = "Sorry, I had a problem on my side. Could you say that again?"


@dataclass(slots=True)
class VoiceStack:
    vad: Callable[[], VoiceActivity]
    stt: SpeechToText
    interviewer: Callable[[InterviewPlan], Interviewer]
    tts: TextToSpeech
    turns: TurnTakingConfig = field(default_factory=TurnTakingConfig)
    provider_timeout_s: float = 15.0
    semantic_grace_s: float = 1.5  # extra listening when the answer reads unfinished
    semantic_timeout_s: float = 1.0  # the check itself; past it the answer counts as done
    early_stt_s: float = 0.6  # a pause this long starts STT on the speech so far; 0: off
    results: ResultsWriter | None = None  # rubric scoring; None: measurements only
    observe: Callable[[str, float], None] | None = None  # (stage, seconds) → histograms
    close: Callable[[], Awaitable[None]] | None = None  # closes its clients (OpenAI's)

    async def aclose(self) -> None:
        """Close the clients the stack holds; the lifespan calls it on the way out."""
        if self.close is not None:
            await self.close()


@dataclass(slots=True)
class Utterance:
    pieces: list[asyncio.Task[str]]  # its transcriptions, in order, some begun at pauses
    precheck: asyncio.Task[bool | None] | None  # the semantic check, begun in the pause
    started_at: float  # wall clock
    last_voiced_at: float  # wall clock of the last voiced chunk
    decided_at: float  # when the detector called the end of the turn


Transcriber = Callable[[np.ndarray, list[asyncio.Task[str]]], asyncio.Task[str]]


class ListenerFailed(RuntimeError):
    """The listening loop stopped with an error; the conversation cannot go on."""


class Capture:
    """The utterance being heard, cut into pieces at pauses that STT may start on early.

    Each stretch of audio is transcribed once: a pause of ``early_s`` hands the speech
    since the last cut to STT while the candidate is silent, so at the end of the turn
    only what came after the last pause is left to transcribe.
    """

    __slots__ = ("chunks", "pieces", "precheck", "started_at", "voiced")

    def __init__(self, chunks: list[np.ndarray], started_at: float) -> None:
        self.chunks = chunks  # since the last cut
        self.pieces: list[asyncio.Task[str]] = []
        self.started_at = started_at
        self.voiced = True  # speech since the last cut
        # the semantic check on everything said so far, begun in the pause after it
        self.precheck: asyncio.Task[bool | None] | None = None

    def cut(self, transcribe: Transcriber) -> None:
        if not self.voiced:  # a pause that was already cut: keep a pre-roll of it only
            del self.chunks[:-PREROLL_CHUNKS]
            return
        self.pieces.append(transcribe(np.concatenate(self.chunks), list(self.pieces)))
        self.chunks = []
        self.voiced = False

    def resumed(self) -> None:
        """More speech: a check begun in the pause no longer covers the whole answer."""
        self.voiced = True
        if self.precheck is not None:
            self.precheck.cancel()
            self.precheck = None

    def abandon(self) -> None:
        self.resumed()
        for piece in self.pieces:
            piece.cancel()


@dataclass(slots=True)
class Answer:
    """The candidate's turn: one or more utterances, transcribed, ready to be answered."""

    text: str
    stopped_at: float  # wall clock of the last voiced chunk
    metrics: dict[str, Any]


class Spoken:
    """One sentence of the interviewer's, and the queued segments it streamed into."""

    __slots__ = ("segments", "sentence")

    def __init__(self, sentence: str) -> None:
        self.sentence = sentence
        self.segments: list[Segment] = []

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.segments)

    @property
    def sent(self) -> int:
        return sum(s.sent for s in self.segments)

    @property
    def first_sent_at(self) -> float | None:
        return next((s.first_sent_at for s in self.segments if s.first_sent_at), None)


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
        # None: the listener failed, and the conversation must fail with it
        self._utterances: asyncio.Queue[Utterance | None] = asyncio.Queue()
        self._reply: asyncio.Task[None] | None = None
        self._events: EventSink | None = None
        self._detector = TurnDetector(stack.turns)
        self._speech_started = asyncio.Event()
        self._stt_tasks: set[asyncio.Task[Any]] = set()

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
                answer = await self._hear_answer()
                if answer is None:
                    continue
                outcome = Reply()
                await self._run_reply(self._speak_reply(outcome, answer))
                if outcome.finished:
                    await self._played()
                    events.send({"type": "interview_complete"})
                    return
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            for task in list(self._stt_tasks):
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

    # ---- listening ---------------------------------------------------------------------

    async def _listen(self, inbound: AsyncIterator[av.AudioFrame]) -> None:
        try:
            await self._hear(inbound)
        except Exception:
            log.exception("listener_failed", interview_id=self.plan.interview_id)
            self._utterances.put_nowait(None)

    async def _hear(self, inbound: AsyncIterator[av.AudioFrame]) -> None:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=VAD_RATE)
        vad = self.stack.vad()
        detector = self._detector
        early_s = self.stack.early_stt_s
        pending = np.zeros(0, dtype=np.float32)
        # Barge-in is called after barge_in_s of speech: keep that much more, so the
        # interruption's first words reach STT too.
        barge_in_chunks = math.ceil(self.stack.turns.barge_in_s / CHUNK_S)
        preroll: deque[np.ndarray] = deque(maxlen=PREROLL_CHUNKS + barge_in_chunks)
        capture: Capture | None = None
        last_voiced = 0.0
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
                    if capture is not None:
                        capture.abandon()  # too short to be a turn
                    kept = list(preroll)
                    if signal is Signal.SPEECH_STARTED:
                        kept = kept[-PREROLL_CHUNKS:]
                    chunks = [*kept, chunk]
                    capture = Capture(chunks, now - len(chunks) * CHUNK_S)
                    self._speech_started.set()
                    if signal is Signal.BARGE_IN:
                        self._barge_in()
                elif signal is Signal.END_OF_TURN and capture is not None:
                    capture.cut(self._transcribe)  # nothing new when a pause already cut
                    self._utterances.put_nowait(
                        Utterance(
                            capture.pieces, capture.precheck, capture.started_at, last_voiced, now
                        )
                    )
                    capture = None
                elif capture is not None and detector.in_speech:
                    capture.chunks.append(chunk)
                    if detector.voiced and not capture.voiced:
                        capture.resumed()
                    pause = not detector.voiced and 0 < early_s <= detector.silence_s
                    if pause and capture.voiced:
                        capture.cut(self._transcribe)
                        capture.precheck = self._precheck(capture.pieces)
                    elif pause or len(capture.chunks) * CHUNK_S >= MAX_PIECE_S:
                        capture.cut(self._transcribe)
                preroll.append(chunk)

    def _precheck(self, pieces: list[asyncio.Task[str]]) -> asyncio.Task[bool | None] | None:
        """Start the semantic check in the pause, on what the pieces say: if the pause
        becomes the end of the turn, its verdict is ready, not another wait."""
        if self.stack.semantic_grace_s <= 0:
            return None
        task = asyncio.create_task(self._check(list(pieces)))
        self._stt_tasks.add(task)
        task.add_done_callback(self._stt_tasks.discard)
        return task

    async def _check(self, pieces: list[asyncio.Task[str]]) -> bool | None:
        try:
            # shielded: this check may be cancelled, the transcriptions must go on
            parts = await asyncio.gather(*(asyncio.shield(piece) for piece in pieces))
            text = " ".join(part for part in parts if part)
            if not text:
                return None
            async with asyncio.timeout(self.stack.semantic_timeout_s):
                return await self.interviewer.is_complete(self.history, text)
        except Exception:
            return None  # the check at the end of the turn decides, or STT's error shows

    def _transcribe(self, audio: np.ndarray, before: list[asyncio.Task[str]]) -> asyncio.Task[str]:
        task = asyncio.create_task(self._transcribe_after(audio, before))
        self._stt_tasks.add(task)
        task.add_done_callback(self._stt_tasks.discard)
        return task

    async def _transcribe_after(self, audio: np.ndarray, before: list[asyncio.Task[str]]) -> str:
        """One piece, with the pieces before it as context (a short piece alone is often
        misheard: "one customer sent thousands" came back as "1,000")."""
        prompt = ""
        if before:
            parts = await asyncio.gather(*(asyncio.shield(p) for p in before))
            prompt = " ".join(part for part in parts if part)
        async with asyncio.timeout(self.stack.provider_timeout_s):
            return await self.stack.stt.transcribe(
                audio, language=self.plan.language, prompt=prompt
            )

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
            utterance = await self._utterances.get()
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
            # aclosing: a cancelled reply closes the model's stream now, not at GC
            stream = contextlib.aclosing(self.interviewer.reply(self.history, outcome))
            async with asyncio.timeout(self.stack.provider_timeout_s * 2), stream as pieces_in:
                async for piece in pieces_in:
                    if not pieces:
                        metrics["llm_first_token_s"] = round(time.perf_counter() - began, 3)
                    pieces.append(piece)
                    buffer += piece
                    *complete, buffer = _sentences_and_rest(buffer)
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
        start = _first_sent(spoken) or time.time()
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
        first = _first_sent(spoken)
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
        self._transcript("interviewer", text, _first_sent(spoken) or time.time(), time.time())
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
        start = _first_sent(spoken) or time.time()
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

    async def evaluate(self) -> tuple[str | None, Any] | None:
        """Rubric scores and a summary, when the stack has a results writer; else None."""
        writer = self.stack.results
        if writer is None or not any(t.role == "candidate" for t in self.history):
            return None
        plan = {
            "role": self.plan.role,
            "questions": list(self.plan.questions),
            "language": self.plan.language,
        }
        return await writer.evaluate(plan, self.history)

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
    """Complete sentences, then the unfinished rest exactly as streamed (possibly empty).

    A sentence is complete once whitespace follows its end mark, so "3." of "3.5" waits;
    the rest keeps its whitespace, so pieces ending in a space do not run together.
    """
    ends = [match.end() for match in SENTENCE_END.finditer(text)]
    if not ends:
        return [text]
    return [*split_sentences(text[: ends[-1]]), text[ends[-1] :]]


def _first_sent(spoken: list[Spoken]) -> float | None:
    return next((line.first_sent_at for line in spoken if line.first_sent_at), None)
