"""Silero VAD one 32 ms chunk at a time hears what faster-whisper's batch run hears."""

from __future__ import annotations

import os

import faster_whisper
import numpy as np
from faster_whisper.vad import SileroVADModel

from interview_service.espeak import EspeakVoice
from interview_service.voice.local import SileroVad
from interview_service.voice.providers import VAD_CHUNK

MODEL = os.path.join(os.path.dirname(faster_whisper.__file__), "assets", "silero_vad_v6.onnx")


async def test_chunk_by_chunk_probabilities_are_the_whole_recordings() -> None:
    pcm = await EspeakVoice().synthesize("I have worked on video pipelines for five years.")
    speech = np.frombuffer(pcm, dtype="<i2").astype(np.float32)[::3] / 32768
    audio = np.concatenate([np.zeros(8 * VAD_CHUNK, np.float32), speech])
    audio = audio[: len(audio) // VAD_CHUNK * VAD_CHUNK]
    reference = SileroVADModel(MODEL)(audio).reshape(-1)  # the recording in one run
    vad = SileroVad()
    for _ in range(2):  # and again after a reset: nothing of the first pass is left
        ours = np.array([vad.probability(c) for c in audio.reshape(-1, VAD_CHUNK)])
        assert np.abs(ours - reference).max() < 1e-5
        assert (ours >= 0.5).sum() > 20  # it heard the speech
        vad.reset()
