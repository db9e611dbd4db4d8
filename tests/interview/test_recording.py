"""The recorder on a clock of the test's own: where each side's frames land in the file."""

from __future__ import annotations

import asyncio
import fractions
import math
from pathlib import Path

import av
import numpy as np

from interview_service.paced_audio import DTX_HANGOVER_FRAMES, PacedSource, tone
from interview_service.recording import Recorder, TappedSource, mono48k

RATE = 48_000
FRAME = 960


def _frame(hz: float, index: int, *, layout: str = "mono", rate: int = RATE) -> av.AudioFrame:
    count = rate // 50
    t = (np.arange(count) + index * count) / rate
    mono = (0.3 * 32767 * np.sin(2 * math.pi * hz * t)).astype(np.int16)
    data = mono.reshape(1, -1) if layout == "mono" else np.repeat(mono, 2).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(data, format="s16", layout=layout)
    frame.sample_rate = rate
    frame.pts = index * count
    frame.time_base = fractions.Fraction(1, rate)
    return frame


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        parts = [f.to_ndarray() for f in container.decode(audio=0)]
    data = np.concatenate(parts, axis=1)
    data = data.reshape(-1, 2).T if data.shape[0] == 1 else data  # packed: interleaved
    scale = 32768.0 if np.issubdtype(data.dtype, np.integer) else 1.0
    return data.astype(np.float32) / scale  # -1..1


def _loud(channel: np.ndarray, start_s: float, end_s: float) -> bool:
    part = channel[int(start_s * RATE) : int(end_s * RATE)]
    return float(np.sqrt((part**2).mean())) > 0.05


async def test_each_side_lands_at_its_time_with_silence_where_nothing_came(tmp_path: Path) -> None:
    now = [0.0]
    recorder = Recorder(tmp_path / "r.ogg", clock=lambda: now[0])
    for index in range(200):  # 4 s; the candidate sends nothing from 1 s to 3 s
        now[0] = (index + 1) * 0.02
        if not 50 <= index < 150:
            recorder.inbound(_frame(330, index, layout="stereo"))
        if index >= 100:  # the interviewer starts at 2 s
            recorder.outbound(_frame(587, index))
        await asyncio.sleep(0)  # the writer thread takes them as they come
    info = await recorder.close()
    assert info.dropped_frames == 0
    assert abs(info.duration_s - 4.0) < 0.05
    left, right = _decode(info.path)
    assert _loud(left, 0.1, 0.9)
    assert _loud(left, 3.1, 3.9)
    assert not _loud(left, 1.1, 2.9)
    assert not _loud(right, 0.1, 1.9)
    assert _loud(right, 2.1, 3.9)


async def test_a_burst_of_late_frames_stays_in_order_and_in_place(tmp_path: Path) -> None:
    now = [0.0]
    recorder = Recorder(tmp_path / "r.ogg", clock=lambda: now[0])
    for index in range(100):
        now[0] = (index + 1) * 0.02
        recorder.outbound(_frame(587, index))
        if index % 5 == 4:  # the candidate's frames come five at a time (jitter buffer)
            for late in range(index - 4, index + 1):
                recorder.inbound(_frame(330, late))
    info = await recorder.close()
    left, right = _decode(info.path)
    assert abs(info.duration_s - 2.0) < 0.05
    assert _loud(left, 0.2, 1.9)
    assert _loud(right, 0.05, 1.95)


def test_frames_of_any_shape_become_mono_48k() -> None:
    assert mono48k(_frame(330, 0)).shape == (FRAME,)
    stereo = mono48k(_frame(330, 0, layout="stereo"))
    assert stereo.dtype == np.int16
    assert np.array_equal(stereo, mono48k(_frame(330, 0)))
    assert mono48k(_frame(330, 0, rate=8000)).shape == (FRAME,)  # PCMU's 8 kHz, resampled


async def test_the_interviewers_unsent_silence_is_recorded_and_its_next_line_in_place(
    tmp_path: Path,
) -> None:
    recorder = Recorder(tmp_path / "r.ogg")
    source = PacedSource()
    tapped = TappedSource(source, recorder.outbound)
    source.enqueue_pcm(tone(0.1))
    for _ in range(5 + DTX_HANGOVER_FRAMES):  # the line, then silence until Opus goes quiet
        await tapped.recv_opus()
    waiting = asyncio.ensure_future(tapped.recv_opus())
    await asyncio.sleep(0.1)  # nothing is sent meanwhile: less than the recorder's resync
    source.enqueue_pcm(tone(0.2))
    first = (await waiting).packet.pts
    for _ in range(12):
        await tapped.recv_opus()
    info = await recorder.close()
    _, interviewer = _decode(info.path)
    loud = np.flatnonzero(np.abs(interviewer) > 0.01)
    onset = int(loud[loud > 0.15 * RATE][0])
    assert first is not None
    assert abs(onset - first) < 0.01 * RATE  # where it was heard
