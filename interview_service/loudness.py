"""How loud an audio frame is: enough to tell a voice from silence."""

from __future__ import annotations

import av
import numpy as np


def rms(frame: av.AudioFrame) -> float:
    """Root mean square of a frame's samples, 0..1."""
    samples = frame.to_ndarray()
    if samples.size == 0:
        return 0.0
    if samples.dtype.kind == "f":
        return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) / 32768.0
