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
    interview_end_of_turn_silence_s: float = Field(default=1.4, ge=0.3, le=5)
    interview_barge_in_s: float = Field(default=0.5, ge=0.1, le=3)
    interview_provider_timeout_s: float = Field(default=15.0, gt=0, le=120)
    # After the silence window, an answer that reads unfinished gets this much longer
    # (the semantic end-of-turn check; 0 turns it off).
    interview_semantic_grace_s: float = Field(default=1.5, ge=0, le=10)
    interview_semantic_timeout_s: float = Field(default=1.0, gt=0, le=10)
    # A pause this long inside an answer starts STT on the speech so far, so little is
    # left to transcribe when the turn ends (0 turns it off).
    interview_early_stt_s: float = Field(default=0.6, ge=0, le=5)
    # Each provider separately: "auto" is OpenAI when OPENAI_API_KEY is set, else local.
    # "module:function" building the whole VoiceStack instead (other providers, benchmarks)
    interview_voice_stack: str | None = None
    stt_provider: Literal["auto", "openai", "local"] = "auto"
    llm_provider: Literal["auto", "openai", "local"] = "auto"
    tts_provider: Literal["auto", "openai", "local"] = "auto"
    stt_local_model: str | None = None  # a faster-whisper model directory or size name
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
