"""The paced outbound source: speech then silence, pts always growing, one shared grid."""

from __future__ import annotations

import numpy as np

from interview_service import paced_audio
from interview_service.paced_audio import FRAME_S, SAMPLES_PER_FRAME, PacedSource, next_tick


async def test_speech_then_silence_with_growing_pts() -> None:
    source = PacedSource()
    speech = (np.arange(2 * SAMPLES_PER_FRAME) % 100 + 1).astype("<i2").tobytes()
    source.enqueue_pcm(speech)
    seen = []
    for _ in range(5):
        frame = await source.recv()
        seen.append((frame.pts, frame.to_ndarray().reshape(-1).copy()))
    assert [pts for pts, _ in seen] == [i * SAMPLES_PER_FRAME for i in range(5)]
    heard = np.concatenate([samples for _, samples in seen[:2]])
    assert heard.tobytes() == speech
    assert all(not samples.any() for _, samples in seen[2:])
    assert not source.speaking
    assert source.speech_frames_sent == 2


async def test_sources_share_the_frame_grid() -> None:
    # two calls' sources started at different moments wake the loop on the same ticks
    for now in (paced_audio._GRID_EPOCH + 0.0031, paced_audio._GRID_EPOCH + 7.0177):
        tick = next_tick(now)
        assert now <= tick < now + FRAME_S
        steps = (tick - paced_audio._GRID_EPOCH) / FRAME_S
        assert abs(steps - round(steps)) < 1e-6
