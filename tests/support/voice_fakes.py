"""Providers with fixed, known latencies: for tests of the voice loop's own behaviour and
for the benchmark that measures the server's overhead beyond the models' time.

``fixed_latency_stack`` is an ``INTERVIEW_VOICE_STACK`` builder; it reads its latencies
from ``FAKE_VOICE_LATENCIES`` (``stt=0.2,llm=0.3,tts=0.1``) and keeps the real Silero VAD,
so the server's listening path is the production one.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import AsyncGenerator, Sequence

import numpy as np
from prometheus_client import Histogram

from backend.app.settings import Settings
from interview_service.conversation_seam import InterviewPlan
from interview_service.voice.factory import assemble_stack
from interview_service.voice.providers import Interviewer, Reply, Turn
from interview_service.voice.stack import VoiceStack


class EnergyVad:
    """Speech is anything louder than -34 dBFS: deterministic for tones."""

    def probability(self, chunk: np.ndarray) -> float:
        return 1.0 if float(np.sqrt(np.mean(chunk**2))) > 0.02 else 0.0

    def reset(self) -> None:
        pass


class FixedStt:
    name = "fixed-stt"

    def __init__(self, texts: Sequence[str] = ("I like Python.",), latency_s: float = 0.0):
        self.texts = list(texts)
        self.latency_s = latency_s
        self.fail: BaseException | None = None
        self.calls = 0
        self.heard_s: list[float] = []  # seconds of audio per call
        self.prompts: list[str] = []

    async def transcribe(
        self, audio: np.ndarray, *, language: str, prompt: str | None = None
    ) -> str:
        self.calls += 1
        self.prompts.append(prompt or "")
        self.heard_s.append(len(audio) / 16_000)
        await asyncio.sleep(self.latency_s)
        if self.fail is not None:
            raise self.fail
        return self.texts.pop(0) if len(self.texts) > 1 else self.texts[0]


class FixedInterviewer:
    name = "fixed-interviewer"
    scripted = True

    def __init__(
        self,
        replies: Sequence[str] = ("Thank you. Next question?",),
        *,
        first_token_s: float = 0.0,
        word_s: float = 0.0,
        finish_after: int | None = None,
    ) -> None:
        self.replies = list(replies)
        self.first_token_s = first_token_s
        self.word_s = word_s  # streaming pace after the first token
        self.closed_early = 0  # replies whose stream was closed before its end
        self.finish_after = finish_after
        self.verdicts: list[bool] = [True]
        self.check_s = 0.0  # how long the semantic check takes
        self.checks = 0
        self.fail: BaseException | None = None
        self.replied = 0

    def opening(self) -> str:
        return "Hello. First question?"

    async def reply(self, history: Sequence[Turn], outcome: Reply) -> AsyncGenerator[str, None]:
        await asyncio.sleep(self.first_token_s)
        if self.fail is not None:
            raise self.fail
        self.replied += 1
        text = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        outcome.question_index = self.replied
        outcome.finished = self.finish_after is not None and self.replied >= self.finish_after
        finished = False
        try:
            for index, word in enumerate(text.split(" ")):
                if index and self.word_s:
                    await asyncio.sleep(self.word_s)
                yield word + " "
            finished = True
        finally:
            if not finished:
                self.closed_early += 1

    async def is_complete(self, history: Sequence[Turn], partial: str) -> bool:
        self.checks += 1
        await asyncio.sleep(self.check_s)
        return self.verdicts.pop(0) if len(self.verdicts) > 1 else self.verdicts[0]


def voice_pcm(seconds: float, hz: float = 220.0) -> bytes:
    """s16 mono 48 kHz: loud enough for the energy VAD and for 'heard' checks."""
    t = np.arange(int(seconds * 48_000)) / 48_000
    return (0.3 * np.sin(2 * math.pi * hz * t) * 32767).astype("<i2").tobytes()


class FixedTts:
    name = "fixed-tts"

    def __init__(self, first_byte_s: float = 0.0, seconds_per_word: float = 0.25) -> None:
        self.first_byte_s = first_byte_s
        self.seconds_per_word = seconds_per_word

    async def synthesize(self, text: str, *, language: str) -> AsyncGenerator[bytes, None]:
        await asyncio.sleep(self.first_byte_s)
        yield voice_pcm(max(1, len(text.split())) * self.seconds_per_word)


# long enough (about 4 s) to be talked over in the benchmark
FAKE_REPLY = (
    "Thank you. Tell me more about the largest system you have designed, "
    "how many people used it, and what broke first."
)


def latencies(spec: str | None) -> dict[str, float]:
    values = {"stt": 0.0, "llm": 0.0, "tts": 0.0}
    for part in (spec or "").split(","):
        if "=" in part:
            key, _, value = part.partition("=")
            values[key.strip()] = float(value)
    return values


def fixed_latency_stack(settings: Settings, histogram: Histogram | None = None) -> VoiceStack:
    delay = latencies(os.environ.get("FAKE_VOICE_LATENCIES"))
    stt = FixedStt(["I have worked on video pipelines for five years."], latency_s=delay["stt"])
    tts = FixedTts(first_byte_s=delay["tts"], seconds_per_word=0.2)

    def interviewer(plan: InterviewPlan) -> Interviewer:
        return FixedInterviewer([FAKE_REPLY], first_token_s=delay["llm"])

    return assemble_stack(settings, stt=stt, interviewer=interviewer, tts=tts, histogram=histogram)
