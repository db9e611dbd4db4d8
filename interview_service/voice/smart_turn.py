"""Pipecat's smart-turn v3: is the candidate's answer over, read from how it sounds.

The ONNX model (BSD-2-Clause, Daily) ships inside the ``pipecat-ai`` wheel; it is read
from that package's data directory, never downloaded, and ``pipecat`` itself is never
imported. Its input is the last 8 s of 16 kHz speech as Whisper log-mel features (80
bins, 10 ms hop, the waveform normalised first), as faster-whisper's feature extractor
computes them (:mod:`.log_mel`: the same numbers for less). Its output is the
probability that the turn is complete.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from interview_service.voice.log_mel import LogMel

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
WINDOW_S = 8
RATE = 16_000
WINDOW = WINDOW_S * RATE


class SmartTurnMissing(RuntimeError):
    """The pipecat-ai package (which carries the model file) is not installed."""


def bundled_model() -> Path:
    """The model file inside the installed pipecat-ai package (not imported, only found)."""
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        raise SmartTurnMissing("smart-turn v3 needs the pipecat-ai package (uv sync)")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "audio" / "turn" / "smart_turn" / "data" / MODEL_FILE
    if not path.is_file():
        raise SmartTurnMissing(f"pipecat-ai has no {MODEL_FILE} at {path}")
    return path


class SmartTurn:
    """One onnxruntime session on one thread; :meth:`complete_probability` is blocking
    (about 0.1 s here), so callers run it off the event loop."""

    name = "smart-turn-v3"

    def __init__(self, path: Path | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self._session = onnxruntime.InferenceSession(
            str(path or bundled_model()), providers=["CPUExecutionProvider"], sess_options=options
        )
        self._features = LogMel(WINDOW)
        self._window = np.zeros(WINDOW, dtype=np.float32)

    def complete_probability(self, speech: np.ndarray) -> float:
        """P(the turn is over) for 16 kHz mono float32 speech ending now."""
        window = self._window
        tail = speech[-WINDOW:]
        lead = WINDOW - len(tail)
        window[:lead] = 0.0  # shorter speech: silence before it
        window[lead:] = tail
        normalised = (window - window.mean()) / np.sqrt(window.var() + 1e-7)
        mel = self._features(normalised, lead=lead)
        (probability,) = self._session.run(None, {"input_features": mel[None]})
        return float(np.asarray(probability).reshape(-1)[0])
