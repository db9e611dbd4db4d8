"""The interviewer's voice settings: providers, models, OpenAI and turn-taking thresholds."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from backend.core.settings import CoreSettings


class VoiceSettings(CoreSettings):
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None  # any OpenAI-compatible server
    openai_stt_model: str = "gpt-4o-mini-transcribe"
    openai_llm_model: str = "gpt-4o-mini"
    openai_tts_model: str = "gpt-4o-mini-tts"
    openai_tts_voice: str = "alloy"
    openai_results_model: str | None = None  # rubric scoring; OPENAI_LLM_MODEL when unset

    # The voice loop (docs/interview.md): "interviewer" listens and speaks; "greeter" only
    # greets and measures inbound audio (signaling checks without speech models).
    interview_conversation: Literal["interviewer", "greeter"] = "interviewer"
    # The decide stage's judge of each pause (docs/interview.md): "smart-turn" (the local
    # smart-turn v3 model and the early transcript), "language-model" (the interviewer
    # reads the answer), "window" (a fixed silence: the first iteration's policy).
    interview_turn_model: Literal["smart-turn", "language-model", "window"] = "smart-turn"
    interview_turn_threshold: float = Field(default=0.5, gt=0, lt=1)
    interview_turn_pause_s: float = Field(default=0.16, ge=0.064, le=1)
    interview_turn_confident_s: float = Field(default=0.4, ge=0.1, le=3)
    interview_turn_unsure_s: float = Field(default=3.0, ge=0.1, le=10)
    interview_turn_max_silence_s: float = Field(default=3.0, ge=0.5, le=10)
    interview_end_of_turn_silence_s: float = Field(default=1.4, ge=0.3, le=5)  # "window"
    interview_preemptive_generation: bool = True
    # Build the voice stack and run each model once when the service starts, so the first
    # call's greeting is not late (off in tests that start many service processes).
    interview_warm_models: bool = True
    interview_hold_s: float = Field(default=0.19, ge=0.064, le=2)
    interview_barge_in_s: float = Field(default=1.0, ge=0.1, le=3)
    interview_provider_timeout_s: float = Field(default=15.0, gt=0, le=120)
    interview_semantic_timeout_s: float = Field(default=1.0, gt=0, le=10)
    # A pause this long inside an answer commits the STT piece begun at the pause, so
    # little is left to transcribe when the turn ends (0: pieces only at the end).
    interview_early_stt_s: float = Field(default=0.6, ge=0, le=5)
    # Each provider separately: "auto" is OpenAI when OPENAI_API_KEY is set, else local.
    # "module:function" building the whole VoiceStack instead (other providers, benchmarks)
    interview_voice_stack: str | None = None
    stt_provider: Literal["auto", "openai", "local"] = "auto"
    llm_provider: Literal["auto", "openai", "local"] = "auto"
    tts_provider: Literal["auto", "openai", "local"] = "auto"
    stt_local_model: str | None = None  # a faster-whisper model directory or size name
    # Under this probability of the closing full stop, local STT marks the transcript's
    # end as a guess, and the decide stage does not call it finished on the model's say
    stt_local_sentence_end_min: float = Field(default=0.8, ge=0, le=1)
    model_cache_dir: str = "~/.cache/pipeline-backend"

    @model_validator(mode="after")
    def _openai_needs_key(self) -> Self:
        has_key = self.openai_api_key is not None and self.openai_api_key.get_secret_value()
        for name in ("stt_provider", "llm_provider", "tts_provider"):
            if getattr(self, name) == "openai" and not has_key:
                raise ValueError(f"{name.upper()}=openai needs OPENAI_API_KEY")
        return self

    def provider(self, kind: Literal["stt", "llm", "tts"]) -> Literal["openai", "local"]:
        """Which provider serves ``kind``: its setting, or OpenAI when a key is set."""
        chosen = getattr(self, f"{kind}_provider")
        if chosen != "auto":
            return chosen  # type: ignore[no-any-return]
        has_key = self.openai_api_key is not None and self.openai_api_key.get_secret_value()
        return "openai" if has_key else "local"
