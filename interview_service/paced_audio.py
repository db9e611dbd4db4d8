"""Outbound audio: a paced 20 ms source with silence fill, fed s16 mono 48 kHz PCM."""

from __future__ import annotations

import asyncio
import fractions
import io
import math
import time
from collections import deque

import av
import numpy as np
import structlog

from interview_service.conversation_seam import FRAME_MS, SAMPLE_RATE_OUT

log = structlog.get_logger(__name__)

SAMPLES_PER_FRAME = SAMPLE_RATE_OUT * FRAME_MS // 1000  # 960
BYTES_PER_FRAME = SAMPLES_PER_FRAME * 2  # s16 mono
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE_OUT)
MAX_QUEUED_S = 120.0


class Segment:
    """One queued stretch of speech: how much of it has actually gone out."""

    __slots__ = ("first_sent_at", "frames", "sent")

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.sent = 0
        self.first_sent_at: float | None = None  # time.time() of its first frame


class PacedSource:
    """20 ms frames of 48 kHz mono in real time: queued speech, else silence.

    ``pts`` grows by one frame per frame whatever was queued or flushed, so the RTP
    timestamps keep increasing across interruptions.
    """

    def __init__(self) -> None:
        self._chunks: deque[tuple[bytes, Segment]] = deque(
            maxlen=int(MAX_QUEUED_S * 1000 / FRAME_MS)
        )
        self._pts = 0
        self._start: float | None = None
        self.frames_sent = 0
        self.speech_frames_sent = 0
        self.held = False  # queued speech waits (silence goes out) until released
        self._silence = bytes(BYTES_PER_FRAME)
        self._drained = asyncio.Event()
        self._drained.set()

    def enqueue_pcm(self, pcm: bytes) -> Segment:
        """Queue s16 mono 48 kHz PCM; a partial last frame is padded with silence."""
        segment = Segment(-(-len(pcm) // BYTES_PER_FRAME))
        for offset in range(0, len(pcm), BYTES_PER_FRAME):
            chunk = pcm[offset : offset + BYTES_PER_FRAME]
            self._chunks.append((chunk.ljust(BYTES_PER_FRAME, b"\0"), segment))
        if self._chunks:
            self._drained.clear()
        return segment

    @property
    def speaking(self) -> bool:
        return bool(self._chunks)

    def flush(self) -> int:
        """Drop everything queued (barge-in); returns the frames dropped."""
        dropped = len(self._chunks)
        self._chunks.clear()
        self.held = False
        self._drained.set()
        return dropped

    def hold(self) -> None:
        """Stop speaking at the next frame, keeping what is queued (maybe an interruption)."""
        self.held = True

    def release(self) -> None:
        """Go on from where :meth:`hold` stopped."""
        self.held = False

    @property
    def queued_s(self) -> float:
        return len(self._chunks) * FRAME_MS / 1000

    async def drained(self) -> None:
        await self._drained.wait()

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._pts / SAMPLE_RATE_OUT
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.5:  # fell far behind (a stalled loop): resynchronise, keep pts
            self._start = time.monotonic() - self._pts / SAMPLE_RATE_OUT
        if self._chunks and not self.held:
            payload, segment = self._chunks.popleft()
            if segment.first_sent_at is None:
                segment.first_sent_at = time.time()
            segment.sent += 1
            self.speech_frames_sent += 1
            if not self._chunks:
                self._drained.set()
        else:
            payload = self._silence
        frame = av.AudioFrame(format="s16", layout="mono", samples=SAMPLES_PER_FRAME)
        frame.planes[0].update(payload)
        frame.sample_rate = SAMPLE_RATE_OUT
        frame.pts = self._pts
        frame.time_base = TIME_BASE
        self._pts += SAMPLES_PER_FRAME
        self.frames_sent += 1
        return frame


def to_pcm48k(wav: bytes) -> bytes:
    """Decode any audio file PyAV reads into s16 mono 48 kHz PCM."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE_OUT)
    out = bytearray()
    with av.open(io.BytesIO(wav), mode="r") as container:
        for frame in container.decode(audio=0):
            for resampled in resampler.resample(frame):
                out += bytes(resampled.planes[0])[: resampled.samples * 2]
    for resampled in resampler.resample(None):
        out += bytes(resampled.planes[0])[: resampled.samples * 2]
    return bytes(out)


def tone(seconds: float, hz: float = 440.0, level: float = 0.2) -> bytes:
    """A sine tone, s16 mono 48 kHz: the fallback voice when espeak-ng is absent."""
    t = np.arange(int(seconds * SAMPLE_RATE_OUT)) / SAMPLE_RATE_OUT
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.02)
    wave = level * np.sin(2 * math.pi * hz * t) * fade
    return (wave * 32767).astype("<i2").tobytes()
