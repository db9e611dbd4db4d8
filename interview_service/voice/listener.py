"""The listen stage: inbound frames → 16 kHz mono → VAD → turn-taking → captured speech.

Frames that come as 16 kHz mono float (the peer decodes Opus at that rate) are read as
they are; any other frame goes through a resampler.

It reports what it hears as :data:`Heard` items on a queue that the conversation reads
(``None``: the listener failed). Holding the interviewer's audio cannot wait for a queue
to be read, so :class:`Interviewer`'s ``hold``/``release`` are called straight away.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import av
import numpy as np
import structlog

from interview_service.voice.providers import VAD_CHUNK, VAD_RATE, VoiceActivity
from interview_service.voice.transcribe import PREROLL_CHUNKS, Capture, Transcriber
from interview_service.voice.turn_taking import CHUNK_S, Signal, TurnDetector

log = structlog.get_logger(__name__)

MAX_PIECE_S = 30.0  # speech with no pause is cut for STT every this many seconds
FRAME_SAMPLES_MAX = 4 * VAD_CHUNK  # more than any one frame resamples to
SPEECH_CHUNKS = 250  # 8 s: what the end-of-turn model reads


class ListenerFailed(RuntimeError):
    """The listening loop stopped with an error; the conversation cannot go on."""


class Voice(Protocol):
    """What the listener needs of the speaking side."""

    @property
    def speaking(self) -> bool: ...

    def hold(self) -> None: ...

    def release(self) -> None: ...


@dataclass(slots=True)
class Started:
    capture: Capture
    at: float


@dataclass(slots=True)
class Paused:
    capture: Capture
    speech: np.ndarray  # the utterance so far (for the end-of-turn model)


@dataclass(slots=True)
class Resumed:
    capture: Capture


@dataclass(slots=True)
class Ended:
    capture: Capture
    last_voiced_at: float  # wall clock of the last voiced chunk
    decided_at: float


@dataclass(slots=True)
class Interrupted:
    capture: Capture  # the speech over the interviewer, from its start
    held_at: float


Heard = Started | Paused | Resumed | Ended | Interrupted


class Listener:
    def __init__(
        self,
        vad: VoiceActivity,
        detector: TurnDetector,
        transcribe: Transcriber,
        voice: Voice,
        *,
        early_stt_s: float,
        interview_id: str = "",
    ) -> None:
        self.vad = vad
        self.detector = detector
        self.transcribe = transcribe
        self.voice = voice
        self.early_stt_s = early_stt_s
        self.interview_id = interview_id
        self.heard: asyncio.Queue[Heard | None] = asyncio.Queue()
        self.frames_in = 0
        self.voiced_frames_in = 0
        # the utterance from its start, for the end-of-turn model (its last 8 s)
        self._speech: list[np.ndarray] = []
        self._held_at = 0.0

    async def listen(self, inbound: AsyncIterator[av.AudioFrame]) -> None:
        try:
            await self._hear(inbound)
        except Exception:
            log.exception("listener_failed", interview_id=self.interview_id)
            self.heard.put_nowait(None)

    async def _hear(self, inbound: AsyncIterator[av.AudioFrame]) -> None:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=VAD_RATE)
        pending = np.empty(VAD_CHUNK + FRAME_SAMPLES_MAX, dtype=np.float32)
        filled = 0
        # Interruptions are confirmed after barge_in_s of speech: keep that much more, so
        # their first words reach STT too.
        over_chunks = math.ceil(self.detector.config.barge_in_s / CHUNK_S)
        preroll: deque[np.ndarray] = deque(maxlen=PREROLL_CHUNKS + over_chunks)
        capture: Capture | None = None
        last_voiced = 0.0
        async for frame in inbound:
            self.frames_in += 1
            # The peer decodes the candidate's Opus at 16 kHz mono float already
            # (interview_service.opus_decoder); anything else is resampled.
            ready = (
                frame.sample_rate == VAD_RATE
                and frame.format.name == "flt"
                and frame.layout.nb_channels == 1
            )
            for converted in (frame,) if ready else resampler.resample(frame):
                # a view of the frame's plane (to_ndarray stacks a copy of it)
                plane = memoryview(converted.planes[0])
                samples = np.frombuffer(plane, np.float32, converted.samples)
                pending[filled : filled + len(samples)] = samples
                filled += len(samples)
            while filled >= VAD_CHUNK:
                chunk = pending[:VAD_CHUNK].copy()  # kept by the capture: its own array
                pending[: filled - VAD_CHUNK] = pending[VAD_CHUNK:filled]
                filled -= VAD_CHUNK
                now = time.time()
                signal = self.detector.push(
                    self.vad.probability(chunk), interviewer_speaking=self.voice.speaking
                )
                if self.detector.voiced:
                    self.voiced_frames_in += 1
                    last_voiced = now
                capture = self._on(signal, chunk, capture, preroll, now, last_voiced)
                preroll.append(chunk)

    def _on(
        self,
        signal: Signal,
        chunk: np.ndarray,
        capture: Capture | None,
        preroll: deque[np.ndarray],
        now: float,
        last_voiced: float,
    ) -> Capture | None:
        """One chunk's signal; returns the capture that goes on (None: no utterance)."""
        match signal:
            case Signal.SPEECH_STARTED:
                if capture is not None:
                    capture.abandon()  # too short to be a turn
                kept = [*list(preroll)[-PREROLL_CHUNKS:], chunk]
                capture = Capture(kept, now - len(kept) * CHUNK_S)
                self._speech = list(kept)
                self.heard.put_nowait(Started(capture, now))
                return capture
            case Signal.HOLD:
                self._held_at = now
                self.voice.hold()
                return capture
            case Signal.RELEASE:
                self.voice.release()
                return capture
            case Signal.INTERRUPT:
                if capture is not None:
                    capture.abandon()
                kept = [*preroll, chunk]
                capture = Capture(kept, now - len(kept) * CHUNK_S)
                self._speech = list(kept)
                self.heard.put_nowait(Interrupted(capture, self._held_at or now))
                return capture
            case Signal.END_OF_TURN if capture is not None:
                capture.commit(self.transcribe)
                self.heard.put_nowait(Ended(capture, last_voiced, now))
                return None
            case Signal.END_OF_TURN | Signal.NONE | Signal.PAUSED | Signal.RESUMED:
                pass
        if capture is None:
            return None
        if not (self.detector.in_speech or self.detector.interrupting):
            capture.abandon()  # a cough, or a false interruption: no turn
            return None
        capture.chunks.append(chunk)
        if self.detector.voiced:
            capture.voiced = True
        self._speech.append(chunk)
        if len(self._speech) > 2 * SPEECH_CHUNKS:
            del self._speech[:-SPEECH_CHUNKS]
        if signal is Signal.PAUSED:
            capture.pause(self.transcribe)
            self.heard.put_nowait(Paused(capture, np.concatenate(self._speech[-SPEECH_CHUNKS:])))
        elif signal is Signal.RESUMED:
            capture.resume()
            self.heard.put_nowait(Resumed(capture))
        elif not self.detector.voiced and 0 < self.early_stt_s <= self.detector.silence_s:
            if capture.voiced:
                capture.commit(self.transcribe)
        elif len(capture.chunks) * CHUNK_S >= MAX_PIECE_S:
            capture.commit(self.transcribe)
        return capture
