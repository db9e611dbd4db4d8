"""The smart-turn features, computed the cheap way, are faster-whisper's features."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from interview_service.espeak import EspeakVoice
from interview_service.voice.log_mel import LogMel
from interview_service.voice.smart_turn import WINDOW, SmartTurn


def _window(speech: np.ndarray) -> tuple[np.ndarray, int]:
    """As the model sees it: the last 8 s, silence before a shorter answer, normalised."""
    tail = speech[-WINDOW:]
    window = np.zeros(WINDOW, np.float32)
    window[WINDOW - len(tail) :] = tail
    return (window - window.mean()) / np.sqrt(window.var() + 1e-7), WINDOW - len(tail)


def _reference(normalised: np.ndarray) -> np.ndarray:
    extractor = FeatureExtractor(feature_size=80, chunk_length=8)
    return extractor(normalised, padding=0)[:, : WINDOW // 160]


def _noise(seconds: float, seed: int = 3) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * 16_000)) * 0.1).astype(
        np.float32
    )


@pytest.mark.parametrize("seconds", [0.01, 0.02, 0.0125, 0.0126, 0.3, 3.0, 7.99, 8.0, 11.0])
def test_the_features_are_faster_whispers_for_every_length_of_answer(seconds: float) -> None:
    normalised, lead = _window(_noise(seconds))
    ours = LogMel(WINDOW)(normalised, lead=lead)
    reference = _reference(normalised)
    assert ours.shape == reference.shape == (80, 800)
    assert ours.dtype == np.float32
    # float32 rounding in a different summation order, nothing more
    assert np.abs(ours - reference).max() < 1e-4
    # not knowing the lead changes nothing either
    assert np.abs(LogMel(WINDOW)(normalised) - ours).max() < 1e-5


def test_a_window_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="128000 samples"):
        LogMel(WINDOW)(np.zeros(1000, np.float32))


async def test_the_model_hears_the_same_probability_as_with_faster_whispers_features() -> None:
    voice = EspeakVoice()
    model = SmartTurn()
    for text in ("I have worked on video pipelines for five years.", "I think that the"):
        pcm = await voice.synthesize(text)
        speech = np.frombuffer(pcm, dtype="<i2").astype(np.float32)[::3] / 32768
        for cut in (len(speech), len(speech) // 2):
            normalised, _ = _window(speech[:cut])
            mel = _reference(normalised)[None].astype(np.float32)
            (reference,) = model._session.run(None, {"input_features": mel})
            expected = float(np.asarray(reference).reshape(-1)[0])
            assert model.complete_probability(speech[:cut]) == pytest.approx(expected, abs=1e-4)
