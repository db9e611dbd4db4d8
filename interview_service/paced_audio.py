"""Outbound audio: a paced 20 ms source with silence fill, fed s16 mono 48 kHz PCM.

It hands out either PCM frames (:meth:`PacedSource.recv`) or Opus packets
(:meth:`PacedSource.recv_opus`, what the peer sends when Opus was negotiated): speech is
encoded a batch ahead of its time in a worker thread, silence is one packet.

Opus goes quiet while the interviewer is silent (discontinuous transmission, RFC 7587
§3.1.3): after ``DTX_HANGOVER_FRAMES`` silent packets, ``recv_opus`` waits for speech and
sends only one silent packet every ``DTX_KEEPALIVE_S`` (libopus's own DTX does the same,
200 ms then 400 ms). The RTP timestamps jump over the gap, the sequence numbers do not
(aiortc numbers packets as they go out); receivers play the gap as silence. The hangover
also pushes the last speech through receivers that hold a few packets back (aiortc
releases a frame once four more have come).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import io
import itertools
import math
import time
from collections import deque
from typing import Any

import av
import numpy as np
import structlog

from interview_service.conversation_seam import FRAME_MS, SAMPLE_RATE_OUT, OpusFrame
from interview_service.opus_encoder import OpusEncoder, pcm_frame, silence_packet

log = structlog.get_logger(__name__)

SAMPLES_PER_FRAME = SAMPLE_RATE_OUT * FRAME_MS // 1000  # 960
BYTES_PER_FRAME = SAMPLES_PER_FRAME * 2  # s16 mono
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE_OUT)
MAX_QUEUED_S = 120.0
FRAME_S = FRAME_MS / 1000
DTX_HANGOVER_FRAMES = 10
DTX_KEEPALIVE_S = 0.4
SILENCE = bytes(BYTES_PER_FRAME)
# Opus packets are encoded in a worker thread once fewer than ENCODED_AHEAD frames of the
# queued speech have one, up to ENCODE_BATCH at a time: one thread hop per second of
# speech instead of one per 20 ms frame.
ENCODED_AHEAD = 10
ENCODE_BATCH = 50
# Every source's frames fall due on one process-wide 20 ms grid, so the sources of all
# calls wake the event loop once per tick together rather than each at its own moment
# (a wake-up is most of what pacing costs: ~0.8 % of a core for one source alone, ~0.25 %
# each for four sharing a tick; bench/paced_audio.py).
_GRID_EPOCH = time.monotonic()


def next_tick(now: float) -> float:
    """The first tick of the process-wide frame grid at or after ``now``."""
    return _GRID_EPOCH + math.ceil((now - _GRID_EPOCH) / FRAME_S) * FRAME_S


class Segment:
    """One queued stretch of speech: how much of it has actually gone out."""

    __slots__ = ("first_sent_at", "frames", "sent")

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.sent = 0
        self.first_sent_at: float | None = None  # time.time() of its first frame


class _Queued:
    """20 ms of queued speech: its PCM, its Opus packet once encoded, its segment."""

    __slots__ = ("packet", "pcm", "segment", "starts_run")

    def __init__(self, pcm: bytes, segment: Segment, starts_run: bool) -> None:
        self.pcm = pcm
        self.segment = segment
        self.starts_run = starts_run
        self.packet: av.Packet[Any] | None = None


class PacedSource:
    """20 ms frames of 48 kHz mono in real time: queued speech, else silence.

    ``pts`` grows by one frame per 20 ms whatever was queued, flushed or left unsent, so
    the RTP timestamps keep increasing across interruptions and silent gaps.
    ``frames_sent`` counts those 20 ms frames, ``packets_sent`` what actually went out.
    """

    def __init__(self) -> None:
        self._chunks: deque[_Queued] = deque(maxlen=int(MAX_QUEUED_S * 1000 / FRAME_MS))
        self._pts = 0
        self._start: float | None = None
        self.frames_sent = 0
        self.packets_sent = 0
        self.speech_frames_sent = 0
        self._silent_run = 0  # silent frames since the last speech frame
        self._wake = asyncio.Event()  # speech may be due: queued, released
        self.held = False  # queued speech waits (silence goes out) until released
        # one silent frame (and one silent packet), sent again and again with a new pts:
        # nothing is built per 20 ms of silence
        self._silence = pcm_frame(SILENCE)
        self._silence_packet = silence_packet()
        self._encoder = OpusEncoder()
        self._drained = asyncio.Event()
        self._drained.set()

    def enqueue_pcm(self, pcm: bytes) -> Segment:
        """Queue s16 mono 48 kHz PCM; a partial last frame is padded with silence."""
        segment = Segment(-(-len(pcm) // BYTES_PER_FRAME))
        starts_run = not self._chunks
        for offset in range(0, len(pcm), BYTES_PER_FRAME):
            chunk = pcm[offset : offset + BYTES_PER_FRAME]
            self._chunks.append(_Queued(chunk.ljust(BYTES_PER_FRAME, b"\0"), segment, starts_run))
            starts_run = False
        if self._chunks:
            self._drained.clear()
            self._wake.set()
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
        self._wake.set()

    @property
    def queued_s(self) -> float:
        return len(self._chunks) * FRAME_MS / 1000

    async def drained(self) -> None:
        await self._drained.wait()

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms as a PCM frame, in real time."""
        queued, pts = await self._next()
        frame = self._silence if queued is None else pcm_frame(queued.pcm)
        frame.pts = pts
        return frame

    async def recv_opus(self) -> OpusFrame:
        """The next 20 ms as an Opus packet, in real time (and its PCM, for a recorder)."""
        if self._silent_run >= DTX_HANGOVER_FRAMES:
            await self._quiet()
        await self._encode_ahead()
        queued, pts = await self._next()
        if queued is None:
            packet, pcm = self._silence_packet, SILENCE
        else:
            if queued.packet is None:  # speech queued while waiting for its time: just it
                self._encoder.encode([queued])
            assert queued.packet is not None
            packet, pcm = queued.packet, queued.pcm
        packet.pts = pts
        packet.time_base = TIME_BASE
        return OpusFrame(packet, pcm)

    async def _encode_ahead(self) -> None:
        """Encode the next batch of queued speech in a worker thread, when what is encoded
        ahead runs short. Encoded frames are always a prefix of the queue."""
        chunks = self._chunks
        if not chunks or self.held or chunks[min(len(chunks), ENCODED_AHEAD) - 1].packet:
            return
        first = next(i for i, queued in enumerate(chunks) if queued.packet is None)
        batch = list(itertools.islice(chunks, first, first + ENCODE_BATCH))
        # a flush meanwhile leaves the batch encoded for nobody: harmless
        await asyncio.to_thread(self._encoder.encode, batch)

    async def _quiet(self) -> None:
        """Send nothing until speech is due or a keep-alive is; the skipped frames are
        silence on the timeline (``pts`` moves on to the next tick)."""
        self._wake.clear()
        if not self._chunks or self.held:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DTX_KEEPALIVE_S):
                    await self._wake.wait()
        assert self._start is not None  # a silent run follows at least one frame
        now = math.ceil((time.monotonic() - self._start) * SAMPLE_RATE_OUT / SAMPLES_PER_FRAME)
        skipped = max(0, now - self._pts // SAMPLES_PER_FRAME)
        self._pts += skipped * SAMPLES_PER_FRAME
        self.frames_sent += skipped

    async def _next(self) -> tuple[_Queued | None, int]:
        """At the next frame's time: the speech frame due (None: silence), and its pts."""
        if self._start is None:
            self._start = next_tick(time.monotonic())
        due = self._start + self._pts / SAMPLE_RATE_OUT
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.5:  # fell far behind (a stalled loop): resynchronise, keep pts
            self._start = next_tick(time.monotonic()) - self._pts / SAMPLE_RATE_OUT
        queued = None
        if self._chunks and not self.held:
            queued = self._chunks.popleft()
            segment = queued.segment
            if segment.first_sent_at is None:
                segment.first_sent_at = time.time()
            segment.sent += 1
            self.speech_frames_sent += 1
            self._silent_run = 0
            if not self._chunks:
                self._drained.set()
        else:
            self._silent_run += 1
        pts = self._pts
        self._pts += SAMPLES_PER_FRAME
        self.frames_sent += 1
        self.packets_sent += 1
        return queued, pts


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
