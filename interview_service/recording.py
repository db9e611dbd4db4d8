"""Recording a call (``record: true``, the candidate's consent), and where recordings go.

Both sides go into one Opus/Ogg file as two channels: left is the candidate (what the
browser sent), right is the interviewer (what the server sent). One file plays
everywhere as a stereo recording, and each side can still be heard or transcribed on
its own.

The call's event loop only converts each 20 ms frame to mono samples and hands it to a
bounded queue (a frame that finds it full is dropped and counted); a thread of the
recorder's own places the frames on one timeline by their arrival time, fills the gaps
with silence and encodes. Memory stays bounded whatever the call's length: the queue,
and at most :data:`MAX_LAG_S` of audio per side waiting for the other.

The file is written to a spool path while the call runs and handed to a
:class:`RecordingStore` after the end. The store is chosen by the app (local directory,
or S3 through the pipeline's media adapter) and handed in: this package imports no
storage backend.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
import numpy as np
import structlog

from interview_service.conversation_seam import SAMPLE_RATE_OUT, AudioSource, OpusFrame
from interview_service.opus_encoder import pcm_frame

log = structlog.get_logger(__name__)

CONTENT_TYPE = "audio/ogg"
FILE_NAME = "recording.ogg"
LAYOUT = "stereo: left the candidate, right the interviewer"
BLOCK = 960  # 20 ms at 48 kHz: Opus's frame
QUEUE_FRAMES = 500  # ~5 s of both sides' frames between the loop and the writer thread
GAP_S = 0.12  # a side that drifts further than this from the wall clock is resynchronised
MAX_LAG_S = 0.5  # a side silent for longer than this is filled with silence
BIT_RATE = 48_000
CANDIDATE, INTERVIEWER = 0, 1


class RecordingStore(Protocol):
    """Where recordings are kept after the call (keys are ``<interview id>/recording.ogg``)."""

    name: str

    async def save(self, key: str, source: Path, content_type: str) -> None: ...

    async def link(self, key: str) -> str | None:
        """A URL the owner can fetch directly (S3: presigned), or None: the service serves it."""
        ...

    def path(self, key: str) -> Path | None:
        """The local file behind ``key`` (local stores), else None."""
        ...

    async def remove(self, interview_id: str) -> None:
        """Everything stored for one interview."""
        ...

    async def sweep(self, older_than_s: float) -> int:
        """Remove recordings older than this; how many (0 where a lifecycle rule does it)."""
        ...


def recording_key(interview_id: str) -> str:
    return f"{interview_id}/{FILE_NAME}"


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    path: Path
    samples: int
    bytes: int
    dropped_frames: int

    @property
    def duration_s(self) -> float:
        return round(self.samples / SAMPLE_RATE_OUT, 3)


def mono48k(frame: av.AudioFrame) -> np.ndarray:
    """Any PyAV audio frame as int16 mono 48 kHz samples (averaging channels)."""
    data = frame.to_ndarray()
    channels = max(1, len(frame.layout.channels))
    if frame.format.name == "s16" and frame.sample_rate == SAMPLE_RATE_OUT:  # the usual case
        if channels == 1:
            return data.reshape(-1).copy()
        summed = data.reshape(-1, channels).astype(np.int32).sum(axis=1) // channels
        same: np.ndarray = summed.astype(np.int16)
        return same
    if frame.format.is_planar:
        mono = data.astype(np.float32).mean(axis=0)
    else:
        mono = data.reshape(-1, channels).astype(np.float32).mean(axis=1)
    if np.issubdtype(data.dtype, np.floating):
        mono = mono * 32767.0
    if frame.sample_rate != SAMPLE_RATE_OUT and mono.size:
        count = round(mono.size * SAMPLE_RATE_OUT / frame.sample_rate)
        mono = np.interp(np.linspace(0, mono.size - 1, count), np.arange(mono.size), mono)
    samples: np.ndarray = np.clip(mono, -32768, 32767).astype(np.int16)
    return samples


class _Side:
    """One side's samples not yet encoded; ``end`` is the timeline position after them."""

    def __init__(self) -> None:
        self.pending = np.zeros(0, dtype=np.int16)
        self.end = 0

    def place(self, at: int, pcm: np.ndarray, written: int) -> None:
        """Put ``pcm`` at timeline position ``at`` (or right after what came before)."""
        gap = round(GAP_S * SAMPLE_RATE_OUT)
        start = self.end if abs(at - self.end) <= gap else at
        if start < written:  # that stretch is already encoded (as silence): keep the rest
            pcm = pcm[written - start :]
            start = written
        if start < self.end:  # ran ahead of the clock: overwrite nothing, keep the rest
            pcm = pcm[self.end - start :]
            start = self.end
        if start > self.end:
            self.fill(start)
        self.pending = np.concatenate([self.pending, pcm])
        self.end += pcm.size

    def fill(self, to: int) -> None:
        if to > self.end:
            self.pending = np.concatenate([self.pending, np.zeros(to - self.end, np.int16)])
            self.end = to

    def take(self, count: int) -> np.ndarray:
        block, self.pending = self.pending[:count], self.pending[count:]
        return block


class _Timeline:
    """Both sides on one clock, handed out in stereo blocks once both are known."""

    def __init__(self) -> None:
        self.sides = (_Side(), _Side())
        self.written = 0

    def add(self, side: int, at_s: float, pcm: np.ndarray) -> None:
        now = round(at_s * SAMPLE_RATE_OUT)
        self.sides[side].place(now - pcm.size, pcm, self.written)
        floor = now - round(MAX_LAG_S * SAMPLE_RATE_OUT)
        for other in self.sides:
            other.fill(floor)

    def blocks(self, *, final: bool = False) -> list[np.ndarray]:
        if final:
            last = max(side.end for side in self.sides)
            last += -last % BLOCK
            for side in self.sides:
                side.fill(last)
        ready = min(side.end for side in self.sides) - self.written
        out = []
        for _ in range(ready // BLOCK):
            left, right = (side.take(BLOCK) for side in self.sides)
            out.append(np.stack([left, right], axis=1).reshape(1, -1))
            self.written += BLOCK
        return out


class Recorder:
    """Writes one call's two sides to ``path`` as stereo Opus/Ogg while it runs."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock  # where each frame lands on the timeline (a benchmark's own)
        self._queue: queue.Queue[tuple[int, float, np.ndarray] | None] = queue.Queue(QUEUE_FRAMES)
        self._origin: float | None = None
        self._closed = False
        self._samples = 0
        self.dropped = 0
        self._failure: BaseException | None = None
        # Started by the first frame: an interview nobody connects to writes nothing.
        self._thread = threading.Thread(target=self._write, name="interview-recorder", daemon=True)

    # ---- the two taps, on the event loop -----------------------------------------------

    def inbound(self, frame: av.AudioFrame) -> None:
        """A frame the candidate's browser sent."""
        self._put(CANDIDATE, frame)

    def outbound(self, frame: av.AudioFrame) -> None:
        """A frame the interviewer sent."""
        self._put(INTERVIEWER, frame)

    def _put(self, side: int, frame: av.AudioFrame) -> None:
        if self._closed:
            return
        now = self._clock()
        if self._origin is None:
            self._origin = now  # the file starts with the first frame of either side
            self._thread.start()
        try:
            self._queue.put_nowait((side, now - self._origin, mono48k(frame)))
        except queue.Full:
            self.dropped += 1
        except Exception:  # a frame this code cannot read: the call goes on without it
            self.dropped += 1

    async def close(self) -> RecordingInfo:
        """Stop taking frames, finish the file; the file is complete when this returns."""
        self._closed = True
        if self._origin is None:  # no frame ever came: no file
            return RecordingInfo(self.path, 0, 0, self.dropped)
        await asyncio.to_thread(self._finish)
        if self._failure is not None:
            raise RuntimeError(f"the recording could not be written: {self._failure!r}")
        size = self.path.stat().st_size if self.path.exists() else 0
        return RecordingInfo(self.path, self._samples, size, self.dropped)

    def _finish(self) -> None:
        self._queue.put(None)  # blocks while the writer empties a full queue
        self._thread.join()

    # ---- the writer thread -------------------------------------------------------------

    def _write(self) -> None:
        ended = False
        try:
            with av.open(str(self.path), mode="w", format="ogg") as container:
                # constrained VBR: the file's size is known in advance (about 6 KB/s)
                stream = container.add_stream(
                    "libopus", rate=SAMPLE_RATE_OUT, options={"vbr": "constrained"}
                )
                stream.codec_context.layout = "stereo"
                stream.codec_context.format = "s16"
                stream.codec_context.bit_rate = BIT_RATE
                timeline = _Timeline()

                def encode(block: np.ndarray | None) -> None:
                    frame = None
                    if block is not None:
                        frame = av.AudioFrame.from_ndarray(block, format="s16", layout="stereo")
                        frame.sample_rate = SAMPLE_RATE_OUT
                        frame.pts = self._samples
                        self._samples += BLOCK
                    for packet in stream.encode(frame):
                        container.mux(packet)

                while (item := self._queue.get()) is not None:
                    timeline.add(*item)
                    for block in timeline.blocks():
                        encode(block)
                ended = True
                for block in timeline.blocks(final=True):
                    encode(block)
                encode(None)
        except BaseException as exc:  # kept for close(); the queue is drained so it never blocks
            self._failure = exc
            log.exception("recording_failed", path=str(self.path))
            while not ended:
                ended = self._queue.get() is None


class TappedSource:
    """An audio source whose every frame is also shown to ``tap`` (the recorder).

    Opus packets leave out the interviewer's silences (DTX: the timestamps jump); the
    tap is shown each gap as one silent frame as long, so the recorded side has the
    frames the listener heard, each where it was heard.
    """

    def __init__(self, source: AudioSource, tap: Callable[[av.AudioFrame], None]) -> None:
        self._source = source
        self._tap = tap
        self._next_pts: int | None = None

    async def recv(self) -> av.AudioFrame:
        frame = await self._source.recv()
        self._tap(frame)
        return frame

    async def recv_opus(self) -> OpusFrame:
        encoded = await self._source.recv_opus()
        pts = encoded.packet.pts
        if pts is not None:
            if self._next_pts is not None and pts > self._next_pts:
                self._tap(_silence(pts - self._next_pts))
            self._next_pts = pts + len(encoded.pcm) // 2
        self._tap(pcm_frame(encoded.pcm))
        return encoded


def _silence(samples: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(
        np.zeros((1, samples), np.int16), format="s16", layout="mono"
    )
    frame.sample_rate = SAMPLE_RATE_OUT
    return frame
