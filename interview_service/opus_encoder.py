"""The interviewer's voice as Opus packets, encoded ahead of the 20 ms pacing.

aiortc sends a packet a track hands it as it is: no encode per frame in its thread pool,
no audio level computed per frame (``RTCRtpSender._next_encoded_frame``). So the paced
source hands out packets made here: silence is one packet encoded once (libopus codes
digital silence as a 3-byte frame the decoder renders as silence whatever it played
before), speech is encoded a batch at a time off the event loop.

libopus carries state from frame to frame (6.5 ms of lookahead, its predictions), so a
run of speech goes through one encoder in the order it is played; the next run starts a
fresh encoder, which assumes silence before it, as the listener has just heard.
"""

from __future__ import annotations

import fractions
import functools
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import av

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
# Our voice is mono; aiortc's own encoder sends it as 96 kbit/s stereo. 64 kbit/s of mono
# is more than speech needs and costs about 60 % of the stereo encode.
BIT_RATE = 64_000


class Encodable(Protocol):
    """One queued 20 ms frame: its s16 mono PCM, and its packet once encoded."""

    pcm: bytes
    starts_run: bool  # the first frame after silence: a fresh encoder
    packet: av.Packet[Any] | None


def pcm_frame(pcm: bytes) -> av.AudioFrame:
    """20 ms of s16 mono 48 kHz PCM as a PyAV frame."""
    frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
    frame.planes[0].update(pcm)
    frame.sample_rate = SAMPLE_RATE
    frame.time_base = TIME_BASE
    return frame


def _codec() -> av.AudioCodecContext:
    codec = av.CodecContext.create("libopus", "w")
    assert isinstance(codec, av.AudioCodecContext)
    codec.bit_rate = BIT_RATE
    codec.format = "s16"
    codec.layout = "mono"
    codec.sample_rate = SAMPLE_RATE
    codec.time_base = TIME_BASE
    codec.options = {"application": "voip"}
    return codec


@functools.cache
def _silence() -> bytes:
    return bytes(_codec().encode(pcm_frame(bytes(2 * FRAME_SAMPLES)))[0])


def silence_packet() -> av.Packet[Any]:
    """20 ms of digital silence, encoded once per process; a source sends its packet
    again and again with a new pts."""
    return av.Packet(_silence())


class OpusEncoder:
    """One source's speech encoder. Called from a worker thread, and on the event loop for
    a run's first frame; the lock keeps the two from sharing libopus's state at once."""

    def __init__(self) -> None:
        self._codec: av.AudioCodecContext | None = None
        self._lock = threading.Lock()

    def encode(self, frames: Sequence[Encodable]) -> None:
        """Set each frame's ``packet``, in order (one packet per 20 ms frame)."""
        with self._lock:
            for item in frames:
                if item.starts_run or self._codec is None:
                    self._codec = _codec()
                packets = self._codec.encode(pcm_frame(item.pcm))
                item.packet = packets[0] if packets else silence_packet()
