"""The scripted sets that turn-taking is judged on, in the tests and in the benchmark.

``THINKING_PAUSES``: answers with a thinking pause of up to 2.5 s in the middle of an
unfinished sentence; cutting in at the pause is a false cut-off. ``BACKCHANNELS``: what
a listener says over the interviewer to keep it going; stopping for one is a false
interruption. Audio comes from espeak-ng at run time, deterministically.
"""

from __future__ import annotations

import numpy as np

from interview_service.espeak import EspeakVoice

# (words before the pause, the pause in seconds, words after it)
THINKING_PAUSES: list[tuple[str, float, str]] = [
    ("My last project was a", 2.5, "video transcoding service on Kubernetes."),
    ("I would start by", 2.0, "measuring where the time goes."),
    ("The queue was unfair because", 2.5, "one customer sent thousands of jobs."),
    ("We moved the encoders onto", 1.8, "spot instances to cut the bill."),
    ("I worked mostly with Postgres and", 2.2, "a bit of Redis for caching."),
    ("We chose Python for the", 2.5, "libraries around data and video."),
    ("I think it was the", 1.5, "deployment pipeline that broke first."),
    ("In my previous role I owned the", 2.5, "whole ingestion layer."),
    ("We measured latency with", 2.0, "histograms in Prometheus."),
    ("It took us about", 2.4, "three months to migrate everything."),
]

BACKCHANNELS: list[str] = [
    "Mm-hm.",
    "Yeah.",
    "Okay.",
    "Right.",
    "Uh-huh.",
    "Yeah, okay.",
    "Right, right.",
    "Sure.",
    "I see.",
    "Okay, yeah.",
]


def silence(seconds: float) -> bytes:
    return bytes(int(48_000 * seconds) * 2)


def trimmed(pcm: bytes) -> bytes:
    """Without espeak-ng's own leading and trailing silence (20 ms frames under -40 dBFS)."""
    samples = np.frombuffer(pcm, dtype="<i2")
    frames = samples[: len(samples) // 960 * 960].reshape(-1, 960).astype(np.float32) / 32768
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > 0.01)
    if not loud.size:
        return pcm
    return samples[loud[0] * 960 : (loud[-1] + 1) * 960].tobytes()


async def thinking_pause_answers(voice: EspeakVoice) -> list[bytes]:
    """Each answer as s16 mono 48 kHz: the first words, exactly the pause, the rest."""
    return [pcm for pcm, _ in await thinking_pause_parts(voice)]


async def thinking_pause_parts(voice: EspeakVoice) -> list[tuple[bytes, float]]:
    """Each answer, and when (seconds into it) the words after the pause begin."""
    parts = []
    for before, pause, after in THINKING_PAUSES:
        first = trimmed(await voice.synthesize(before)) + silence(pause)
        parts.append(
            (first + trimmed(await voice.synthesize(after)) + silence(0.3), len(first) / 96_000)
        )
    return parts


async def backchannels(voice: EspeakVoice) -> list[bytes]:
    return [await voice.synthesize(text) for text in BACKCHANNELS]
