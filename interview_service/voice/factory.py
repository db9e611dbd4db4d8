"""Builds the voice stack from settings, once per process (models are loaded once)."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import structlog
from prometheus_client import CollectorRegistry, Histogram

from interview_service.conversation_seam import InterviewPlan
from interview_service.voice.blas_threads import one_blas_thread
from interview_service.voice.decide import (
    EndOfTurn,
    LanguageModelJudge,
    Silences,
    SilenceWindowJudge,
    SmartTurnJudge,
)
from interview_service.voice.local import EspeakTts, ScriptedInterviewer, SileroVad, WhisperStt
from interview_service.voice.openai_providers import (
    OpenAiInterviewer,
    OpenAiQuestionDrafter,
    OpenAiResults,
    OpenAiStt,
    OpenAiTts,
    make_client,
)
from interview_service.voice.providers import (
    VAD_CHUNK,
    VAD_RATE,
    Interviewer,
    QuestionDrafter,
    ResultsWriter,
    SpeechToText,
    TextToSpeech,
)
from interview_service.voice.settings import VoiceSettings
from interview_service.voice.smart_turn import SmartTurn
from interview_service.voice.stack import VoiceStack
from interview_service.voice.turn_taking import TurnTakingConfig

log = structlog.get_logger(__name__)

STAGE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


def turn_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "interview_turn_stage_seconds",
        "Per-turn latency by stage: end_of_utterance, stt, semantic_check, "
        "llm_first_token, tts_first_byte, voice_to_voice",
        ["stage"],
        buckets=STAGE_BUCKETS,
        registry=registry,
    )


def build_stack(settings: VoiceSettings, histogram: Histogram | None = None) -> VoiceStack:
    """VAD is always local (Silero); STT, the interviewer and TTS each by its setting."""
    client = None
    if settings.openai_api_key is not None and settings.openai_api_key.get_secret_value():
        client = make_client(
            settings.openai_api_key.get_secret_value(),
            settings.openai_base_url,
            timeout_s=settings.interview_provider_timeout_s,
        )
    cache = Path(settings.model_cache_dir).expanduser()

    stt: SpeechToText
    if settings.provider("stt") == "openai" and client is not None:
        stt = OpenAiStt(client, settings.openai_stt_model)
    else:
        stt = WhisperStt(
            settings.stt_local_model,
            cache,
            sentence_end_min=settings.stt_local_sentence_end_min,
        )

    tts: TextToSpeech
    if settings.provider("tts") == "openai" and client is not None:
        tts = OpenAiTts(client, settings.openai_tts_model, settings.openai_tts_voice)
    else:
        tts = EspeakTts()

    results: ResultsWriter | None = None
    drafter: QuestionDrafter | None = None
    interviewer: Callable[[InterviewPlan], Interviewer]
    if settings.provider("llm") == "openai" and client is not None:
        llm_client = client
        model = settings.openai_llm_model

        def interviewer(plan: InterviewPlan) -> Interviewer:
            return OpenAiInterviewer(
                llm_client,
                model,
                role=plan.role,
                questions=plan.questions,
                language=plan.language,
                job_description=plan.job_description,
                max_follow_ups=plan.max_follow_ups,
            )

        results = OpenAiResults(client, settings.openai_results_model or model)
        drafter = OpenAiQuestionDrafter(client, model)
    else:

        def interviewer(plan: InterviewPlan) -> Interviewer:
            return ScriptedInterviewer(
                plan.role, plan.questions, plan.language, max_follow_ups=plan.max_follow_ups
            )

    log.info(
        "voice_stack",
        vad="silero-onnx",
        stt=stt.name,
        interviewer="openai-chat" if results is not None else "scripted",
        tts=tts.name,
        turn_model=settings.interview_turn_model,
        openai_base_url=settings.openai_base_url if client is not None else None,
    )
    return assemble_stack(
        settings,
        stt=stt,
        interviewer=interviewer,
        tts=tts,
        results=results,
        drafter=drafter,
        histogram=histogram,
        close=client.close if client is not None else None,
    )


def assemble_stack(
    settings: VoiceSettings,
    *,
    stt: SpeechToText,
    interviewer: Callable[[InterviewPlan], Interviewer],
    tts: TextToSpeech,
    results: ResultsWriter | None = None,
    drafter: QuestionDrafter | None = None,
    histogram: Histogram | None = None,
    close: Callable[[], Awaitable[None]] | None = None,
) -> VoiceStack:
    """A stack of the given providers, with Silero VAD and the turn-taking settings;
    for ``INTERVIEW_VOICE_STACK`` builders too."""

    def observe(stage: str, seconds: float) -> None:
        if histogram is not None:
            histogram.labels(stage=stage).observe(seconds)

    one_blas_thread()  # the features' small products: one thread, no spinning
    end_of_turn, model = end_of_turn_judge(settings)
    vad = SileroVad

    def warm() -> None:
        """Each model once, so the first call pays nothing: greeting within a second."""
        vad().probability(np.zeros(VAD_CHUNK, dtype=np.float32))
        if model is not None:
            model.complete_probability(np.zeros(16_000, dtype=np.float32))
        if isinstance(stt, WhisperStt):
            stt_warm()

    def stt_warm() -> None:
        asyncio.run(stt.transcribe(np.zeros(VAD_RATE // 2, np.float32), language="en"))

    return VoiceStack(
        vad=vad,
        stt=stt,
        interviewer=interviewer,
        tts=tts,
        turns=TurnTakingConfig(
            pause_s=settings.interview_turn_pause_s,
            max_silence_s=settings.interview_turn_max_silence_s,
            hold_s=settings.interview_hold_s,
            barge_in_s=settings.interview_barge_in_s,
        ),
        end_of_turn=end_of_turn,
        preemptive=settings.interview_preemptive_generation,
        provider_timeout_s=settings.interview_provider_timeout_s,
        early_stt_s=settings.interview_early_stt_s,
        results=results,
        drafter=drafter,
        observe=observe,
        close=close,
        warm=warm,
    )


def end_of_turn_judge(
    settings: VoiceSettings,
) -> tuple[Callable[[Interviewer], EndOfTurn], SmartTurn | None]:
    """The judge INTERVIEW_TURN_MODEL names, per call; the model is loaded once."""
    silences = Silences(
        confident_s=settings.interview_turn_confident_s,
        unsure_s=settings.interview_turn_unsure_s,
        max_s=settings.interview_turn_max_silence_s,
    )
    if settings.interview_turn_model == "window":
        window = SilenceWindowJudge(settings.interview_end_of_turn_silence_s)
        return (lambda interviewer: window), None
    if settings.interview_turn_model == "language-model":
        timeout = settings.interview_semantic_timeout_s
        return (lambda interviewer: LanguageModelJudge(interviewer, silences, timeout)), None
    judge = SmartTurnJudge(SmartTurn(), silences, settings.interview_turn_threshold)
    return (lambda interviewer: judge), judge.model


def stack_builder(spec: str | None) -> Callable[[VoiceSettings, Histogram], VoiceStack]:
    """``build_stack``, or the ``module:function`` that INTERVIEW_VOICE_STACK names."""
    if not spec:
        return build_stack
    module, _, name = spec.partition(":")
    try:
        builder = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise RuntimeError(f"INTERVIEW_VOICE_STACK={spec!r} does not name a function") from exc
    if not callable(builder):
        raise RuntimeError(f"INTERVIEW_VOICE_STACK={spec!r} is not callable")
    return builder  # type: ignore[no-any-return]
