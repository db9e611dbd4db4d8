"""What the interviewer needs from speech and language models, as Protocols.

Each provider is chosen separately by settings (:mod:`interview_service.voice.factory`):
the local stack needs no network, the OpenAI one an API key.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from interview_service.scoring import Scored

VAD_RATE = 16_000
VAD_CHUNK = 512  # 32 ms at 16 kHz: what Silero expects


class VoiceActivity(Protocol):
    """Speech probability of successive 32 ms chunks of 16 kHz mono float32 audio."""

    def probability(self, chunk: np.ndarray) -> float: ...

    def reset(self) -> None: ...


class Words(str):
    """A transcript whose last word the recogniser was unsure of.

    Whisper drops or guesses a fragment's trailing word ("I owned the" heard as "I
    owned."), and then the words read finished when the speaker was mid-thought; a
    recogniser that knows its last word is a guess says so with ``Words(text)``, and the
    decide stage does not take such words as finished on the model's say alone.
    """

    __slots__ = ()
    unsure_end = True


def unsure_end(text: str) -> bool:
    return isinstance(text, Words) and text.unsure_end


class SpeechToText(Protocol):
    name: str

    async def transcribe(
        self, audio: np.ndarray, *, language: str, prompt: str | None = None
    ) -> str:
        """Text of 16 kHz mono float32 audio.

        ``prompt`` is text that comes "before" the audio: the interview's vocabulary
        (:func:`interview_service.voice.vocabulary.stt_prompt`) and what the candidate
        said just before, so terms are spelled as the interview spells them.
        """
        ...


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # "interviewer" | "candidate"
    text: str


@dataclass(slots=True)
class Reply:
    """How the interviewer answered, beyond the words."""

    question_index: int | None = None
    finished: bool = False  # the plan is done: say goodbye and end
    metadata: dict[str, Any] = field(default_factory=dict)
    # What the plan (interview_service/plan.py) asks of this reply, set before it starts
    may_follow_up: bool = True  # False: this question's follow-ups are used up
    time_warning: str | None = None  # time is short: the warning, spoken before the reply


class Interviewer(Protocol):
    """The language model's side: what to say next."""

    name: str
    scripted: bool  # True: a deterministic script, not a language model

    def opening(self) -> str: ...

    def reply(self, history: Sequence[Turn], outcome: Reply) -> AsyncGenerator[str, None]:
        """Stream the next line in pieces; fills ``outcome`` as it goes."""
        ...

    async def is_complete(self, history: Sequence[Turn], partial: str) -> bool:
        """Whether the candidate's answer so far reads as finished (semantic end of turn)."""
        ...


class TextToSpeech(Protocol):
    name: str

    def synthesize(self, text: str, *, language: str) -> AsyncGenerator[bytes, None]:
        """s16 mono 48 kHz PCM, in pieces as soon as they are ready."""
        ...


class QuestionDrafter(Protocol):
    async def draft(self, role: str | None, job_description: str, *, language: str) -> list[str]:
        """4 to 6 interview questions for the job, before the call."""
        ...


class ResultsWriter(Protocol):
    async def evaluate(self, plan: Mapping[str, Any], transcript: Sequence[Turn]) -> Scored:
        """Scores with evidence quotes held to the transcript, and a summary."""
        ...
