"""CPU of one smart-turn decision, and of its features, per length of answer.

Process CPU time (every thread, so BLAS threads spinning after a product count) per
decision, over ``--runs`` decisions on espeak-ng-like noise, four ways in one process:
faster-whisper's feature extractor (the old way) and ``LogMel`` (now), each with numpy's
BLAS on its default threads and on one (``interview_service/voice/blas_threads.py``).

    uv run python -m bench.turn_model --runs 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor
from threadpoolctl import threadpool_limits

from interview_service.voice.smart_turn import WINDOW, SmartTurn


def _cpu_ms(work: Callable[[], object], runs: int) -> float:
    work()
    times = []
    for _ in range(runs):
        began = time.process_time()
        work()
        times.append((time.process_time() - began) * 1000)
    return statistics.median(times)


def _old_probability(model: SmartTurn, extractor: FeatureExtractor, speech: np.ndarray) -> float:
    """The decision as it was: faster-whisper's extractor on the normalised window."""
    tail = speech[-WINDOW:]
    window = np.zeros(WINDOW, np.float32)
    window[WINDOW - len(tail) :] = tail
    normalised = (window - window.mean()) / np.sqrt(window.var() + 1e-7)
    mel = extractor(normalised, padding=0)[:, : WINDOW // 160]
    (probability,) = model._session.run(None, {"input_features": mel[None].astype(np.float32)})
    return float(np.asarray(probability).reshape(-1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 5.0, 8.0])
    args = parser.parse_args()
    model = SmartTurn()
    extractor = FeatureExtractor(feature_size=80, chunk_length=8)
    rng = np.random.default_rng(1)
    print(f"load average {os.getloadavg()[0]:.1f}; CPU ms per decision, median of {args.runs}")
    print(f"{'answer':>7} {'BLAS':>8} {'old features':>13} {'new features':>13} "
          f"{'old decision':>13} {'new decision':>13}")  # fmt: skip
    for seconds in args.seconds:
        speech = (rng.standard_normal(int(seconds * 16_000)) * 0.1).astype(np.float32)
        for threads in (None, 1):
            with threadpool_limits(limits=threads, user_api="blas"):
                row = _row(model, extractor, speech, args.runs)
            label = "default" if threads is None else "1 thread"
            cells = " ".join(f"{value:13.1f}" for value in row)
            print(f"{seconds:6.1f}s {label:>8} {cells}")


def _row(
    model: SmartTurn, extractor: FeatureExtractor, speech: np.ndarray, runs: int
) -> list[float]:
    """Features old and new, decisions old and new: CPU ms each."""
    window = np.zeros(WINDOW, np.float32)
    window[WINDOW - len(speech) :] = speech
    normalised = (window - window.mean()) / np.sqrt(window.var() + 1e-7)
    lead = WINDOW - len(speech)
    return [
        _cpu_ms(lambda: extractor(normalised, padding=0), runs),
        _cpu_ms(lambda: model._features(normalised, lead=lead), runs),
        _cpu_ms(lambda: _old_probability(model, extractor, speech), runs),
        _cpu_ms(lambda: model.complete_probability(speech), runs),
    ]


if __name__ == "__main__":
    main()
