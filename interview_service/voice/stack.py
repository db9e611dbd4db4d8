"""The interviewer's voice stack: the providers and turn-taking settings a call speaks with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from interview_service.conversation_seam import InterviewPlan
from interview_service.voice.decide import EndOfTurn, LanguageModelJudge, Silences
from interview_service.voice.providers import (
    Interviewer,
    QuestionDrafter,
    ResultsWriter,
    SpeechToText,
    TextToSpeech,
    VoiceActivity,
)
from interview_service.voice.turn_taking import TurnTakingConfig


def language_model_judge(interviewer: Interviewer) -> EndOfTurn:
    return LanguageModelJudge(interviewer, Silences(), timeout_s=1.0)


@dataclass(slots=True)
class VoiceStack:
    vad: Callable[[], VoiceActivity]
    stt: SpeechToText
    interviewer: Callable[[InterviewPlan], Interviewer]
    tts: TextToSpeech
    turns: TurnTakingConfig = field(default_factory=TurnTakingConfig)
    # the decide stage's judge of each pause, per call (it may read the interviewer)
    end_of_turn: Callable[[Interviewer], EndOfTurn] = language_model_judge
    preemptive: bool = True  # prepare the reply while the turn may still go on
    provider_timeout_s: float = 15.0
    early_stt_s: float = 0.6  # a pause this long commits an STT piece; 0: only at the end
    results: ResultsWriter | None = None  # rubric scoring; None: measurements only
    drafter: QuestionDrafter | None = None  # questions from a job description; None: local
    observe: Callable[[str, float], None] | None = None  # (stage, seconds) → histograms
    close: Callable[[], Awaitable[None]] | None = None  # closes its clients (OpenAI's)
    warm: Callable[[], None] | None = None  # runs each model once (at startup, in a thread)

    async def aclose(self) -> None:
        """Close the clients the stack holds; the lifespan calls it on the way out."""
        if self.close is not None:
            await self.close()
