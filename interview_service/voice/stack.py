"""The interviewer's voice stack: the providers and turn-taking settings a call speaks with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from interview_service.conversation_seam import InterviewPlan
from interview_service.voice.providers import (
    Interviewer,
    QuestionDrafter,
    ResultsWriter,
    SpeechToText,
    TextToSpeech,
    VoiceActivity,
)
from interview_service.voice.turn_taking import TurnTakingConfig


@dataclass(slots=True)
class VoiceStack:
    vad: Callable[[], VoiceActivity]
    stt: SpeechToText
    interviewer: Callable[[InterviewPlan], Interviewer]
    tts: TextToSpeech
    turns: TurnTakingConfig = field(default_factory=TurnTakingConfig)
    provider_timeout_s: float = 15.0
    semantic_grace_s: float = 1.5  # extra listening when the answer reads unfinished
    semantic_timeout_s: float = 1.0  # the check itself; past it the answer counts as done
    early_stt_s: float = 0.6  # a pause this long starts STT on the speech so far; 0: off
    results: ResultsWriter | None = None  # rubric scoring; None: measurements only
    drafter: QuestionDrafter | None = None  # questions from a job description; None: local
    observe: Callable[[str, float], None] | None = None  # (stage, seconds) → histograms
    close: Callable[[], Awaitable[None]] | None = None  # closes its clients (OpenAI's)

    async def aclose(self) -> None:
        """Close the clients the stack holds; the lifespan calls it on the way out."""
        if self.close is not None:
            await self.close()
