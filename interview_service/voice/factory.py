"""Builds the voice stack from settings, once per process (models are loaded once)."""

from __future__ import annotations

from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, Histogram

from backend.app.settings import Settings
from interview_service.media import InterviewPlan
from interview_service.voice.conversation import VoiceStack
from interview_service.voice.local import EspeakTts, ScriptedInterviewer, SileroVad, WhisperStt
from interview_service.voice.providers import Interviewer
from interview_service.voice.turns import TurnConfig

log = structlog.get_logger(__name__)

STAGE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


def turn_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "interview_turn_stage_seconds",
        "Per-turn latency by stage: end_of_utterance, stt, llm_first_token, "
        "tts_first_byte, voice_to_voice",
        ["stage"],
        buckets=STAGE_BUCKETS,
        registry=registry,
    )


def build_stack(settings: Settings, histogram: Histogram | None = None) -> VoiceStack:
    """The local stack (VAD, faster-whisper, the scripted interviewer, espeak-ng)."""
    if settings.openai_api_key is not None:
        log.warning(
            "openai_voice_not_implemented",
            detail="OPENAI_API_KEY is set but the OpenAI providers are not built yet; "
            "the interview runs on the local stack",
        )
    cache = Path(settings.model_cache_dir).expanduser()
    stt = WhisperStt(settings.stt_local_model, cache)
    tts = EspeakTts()

    def interviewer(plan: InterviewPlan) -> Interviewer:
        return ScriptedInterviewer(plan.role, plan.questions, plan.language)

    def observe(stage: str, seconds: float) -> None:
        if histogram is not None:
            histogram.labels(stage=stage).observe(seconds)

    return VoiceStack(
        vad=SileroVad,
        stt=stt,
        interviewer=interviewer,
        tts=tts,
        turns=TurnConfig(
            end_silence_s=settings.interview_end_of_turn_silence_s,
            barge_in_s=settings.interview_barge_in_s,
        ),
        provider_timeout_s=settings.interview_provider_timeout_s,
        observe=observe,
    )
