"""Listening on a call: the candidate's audio cut into utterances, transcribed as it goes."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
import structlog

from interview_service.conversation_seam import InterviewPlan
from interview_service.voice.providers import VAD_CHUNK, VAD_RATE, Interviewer, Turn
from interview_service.voice.stack import VoiceStack
from interview_service.voice.turn_taking import CHUNK_S, Signal, TurnDetector
from interview_service.voice.vocabulary import stt_prompt, with_context

log = structlog.get_logger(__name__)

PREROLL_CHUNKS = 10  # 320 ms kept before speech starts, so first syllables are not lost
MAX_PIECE_S = 30.0  # speech with no pause is cut for STT every this many seconds


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


class Listener:
    """Inbound audio to utterances: resample, VAD, turn-taking, STT begun at pauses.

    The conversation reads :attr:`utterances` (None: the listener failed) and is told of
    a barge-in through ``barge_in``.
    """

    def __init__(
        self,
        plan: InterviewPlan,
        stack: VoiceStack,
        interviewer: Interviewer,
        history: list[Turn],
        *,
        interviewer_speaking: Callable[[], bool],
        barge_in: Callable[[], None],
    ) -> None:
        self.plan = plan
        self.stack = stack
        self.interviewer = interviewer
        self.history = history  # the conversation's, read by the semantic pre-check
        self.frames_in = 0
        self.voiced_frames_in = 0
        self.utterances: asyncio.Queue[Utterance | None] = asyncio.Queue()
        self.detector = TurnDetector(stack.turns)
        self.speech_started = asyncio.Event()
        self.stt_tasks: set[asyncio.Task[Any]] = set()
        self._interviewer_speaking = interviewer_speaking
        self._barge_in = barge_in
        self.vocabulary = stt_prompt(  # STT's prompt: the interview's terms, spelled right
            plan.role, plan.job_description, plan.questions
        )

    async def listen(self, inbound: AsyncIterator[av.AudioFrame]) -> None:
        try:
            await self._hear(inbound)
        except Exception:
            log.exception("listener_failed", interview_id=self.plan.interview_id)
            self.utterances.put_nowait(None)

    async def _hear(self, inbound: AsyncIterator[av.AudioFrame]) -> None:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=VAD_RATE)
        vad = self.stack.vad()
        detector = self.detector
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
                    self.speech_started.set()
                    if signal is Signal.BARGE_IN:
                        self._barge_in()
                elif signal is Signal.END_OF_TURN and capture is not None:
                    capture.cut(self._transcribe)  # nothing new when a pause already cut
                    self.utterances.put_nowait(
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
        self.stt_tasks.add(task)
        task.add_done_callback(self.stt_tasks.discard)
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
        self.stt_tasks.add(task)
        task.add_done_callback(self.stt_tasks.discard)
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
                audio, language=self.plan.language, prompt=with_context(self.vocabulary, prompt)
            )
