"""The MP4: slides and speech through PyAV's bundled FFmpeg (no system ffmpeg needed).

H.264 (libx264, yuv420p) and AAC in an MP4 with ``+faststart`` (the index first, so a
browser starts playing before the download ends). Each scene's slide shows for exactly
its narration's duration. Every method runs in a worker thread (FFmpeg releases the
GIL while it encodes); ``stop`` is checked between frame batches, so a cancel lands
within a fraction of a second.
"""

from __future__ import annotations

import threading
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from backend.pipeline.errors import StepCancelled

AUDIO_RATE = 48_000
FRAME_BATCH = 12


@dataclass(frozen=True, slots=True)
class Clip:
    image: Path
    speech: Path
    duration_s: float


def _read_speech(path: Path) -> tuple[np.ndarray[Any, Any], int]:
    with wave.open(str(path), "rb") as source:
        if source.getsampwidth() != 2:
            raise ValueError(f"{path.name}: expected 16-bit PCM")
        rate, channels = source.getframerate(), source.getnchannels()
        samples = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
    return samples, rate


class Mp4Writer:
    def __init__(self, out: Path, *, size: tuple[int, int], fps: int, preset: str) -> None:
        self._size = size
        self._fps = fps
        self._container: Any = av.open(
            str(out), mode="w", format="mp4", options={"movflags": "+faststart"}
        )
        video: Any = self._container.add_stream("libx264", rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        # Slides hold still for seconds: no B-frames, no lookahead and the cheapest motion
        # search halve the encode time at the same quality (nothing moves to search for).
        video.options = {
            "preset": preset,
            "tune": "stillimage",
            "crf": "23",
            "x264-params": "rc-lookahead=0:bframes=0:subme=1:me=dia:ref=1:trellis=0",
        }
        video.codec_context.gop_size = fps * 2  # a keyframe every 2 s: seeking stays quick
        audio: Any = self._container.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "mono"
        self._video, self._audio = video, audio
        self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE)
        self._frames = 0
        self._elapsed = 0.0
        self._audio_pts = 0

    def add(self, clip: Clip, stop: threading.Event) -> None:
        """One scene: its slide for ``clip.duration_s``, and its speech."""
        with Image.open(clip.image) as image:
            rgb = image.convert("RGB")
        if rgb.size != self._size:
            rgb = rgb.resize(self._size)
        frame = av.VideoFrame.from_image(rgb)  # type: ignore[no-untyped-call]
        still = frame.reformat(format="yuv420p")
        still.time_base = Fraction(1, self._fps)
        end_frame = round((self._elapsed + clip.duration_s) * self._fps)
        while self._frames < end_frame:
            if self._frames % FRAME_BATCH == 0 and stop.is_set():
                raise StepCancelled
            still.pts = self._frames
            self._container.mux(self._video.encode(still))
            self._frames += 1
        samples, rate = _read_speech(clip.speech)
        pcm = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        pcm.sample_rate = rate
        self._mux_audio(self._resampler.resample(pcm))
        self._elapsed += clip.duration_s

    def _mux_audio(self, frames: list[Any]) -> None:
        for frame in frames:
            frame.pts = self._audio_pts
            self._audio_pts += frame.samples
            self._container.mux(self._audio.encode(frame))

    def finish(self) -> float:
        """Flush the encoders and write the index; the audio track's duration in seconds."""
        self._mux_audio(self._resampler.resample(None))
        self._container.mux(self._video.encode(None))
        self._container.mux(self._audio.encode(None))
        self._container.close()
        return self._audio_pts / AUDIO_RATE

    def abort(self) -> None:
        self._container.close()
