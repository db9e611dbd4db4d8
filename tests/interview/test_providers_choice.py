"""Which providers serve an interview, chosen by settings, each separately."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from backend.app.settings import Settings, load_settings
from backend.core.settings import SettingsError
from interview_service.conversation_seam import InterviewPlan
from interview_service.voice.factory import build_stack
from interview_service.voice.local import EspeakTts
from interview_service.voice.openai_providers import (
    OpenAiInterviewer,
    OpenAiResults,
    OpenAiStt,
    OpenAiTts,
)


def test_auto_means_openai_with_a_key_and_local_without() -> None:
    assert load_settings().provider("llm") == "local"
    keyed = load_settings(openai_api_key="sk-test")
    assert [keyed.provider(k) for k in ("stt", "llm", "tts")] == ["openai"] * 3
    mixed = load_settings(openai_api_key="sk-test", tts_provider="local")
    assert (mixed.provider("stt"), mixed.provider("tts")) == ("openai", "local")


def test_asking_for_openai_without_a_key_is_refused_at_start() -> None:
    with pytest.raises(SettingsError, match="STT_PROVIDER=openai needs OPENAI_API_KEY"):
        load_settings(stt_provider="openai")


def test_the_openai_stack_uses_the_configured_models() -> None:
    settings = load_settings(
        openai_api_key="sk-test",
        openai_base_url="http://127.0.0.1:9/v1",
        openai_stt_model="stt-x",
        openai_llm_model="llm-x",
        openai_tts_model="tts-x",
        openai_tts_voice="verse",
        openai_results_model="judge-x",
        tts_provider="local",
    )
    stack = build_stack(settings)
    assert isinstance(stack.stt, OpenAiStt)
    assert stack.stt.model == "stt-x"
    assert isinstance(stack.tts, EspeakTts)  # chosen separately
    interviewer = stack.interviewer(InterviewPlan("iv", "cand", questions=("Q1?",)))
    assert isinstance(interviewer, OpenAiInterviewer)
    assert interviewer.model == "llm-x"
    assert isinstance(stack.results, OpenAiResults)
    assert stack.results.model == "judge-x"
    voiced = build_stack(load_settings(openai_api_key="sk-test", openai_tts_voice="verse"))
    assert isinstance(voiced.tts, OpenAiTts)
    assert (voiced.tts.model, voiced.tts.voice) == ("gpt-4o-mini-tts", "verse")


async def test_a_voice_stack_that_does_not_exist_is_a_clear_503(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    app = await start_app(
        make_settings(interview_conversation="interviewer", interview_voice_stack="nowhere:build")
    )
    response = await app.client.post("/api/interview/start", json={"user_id": "cand"})
    assert response.status_code == 503
    body = response.json()
    assert body["error"]["code"] == "voice_unavailable"
    assert "INTERVIEW_VOICE_STACK='nowhere:build'" in body["error"]["message"]


async def test_closing_the_stack_closes_its_openai_client() -> None:
    stack = build_stack(load_settings(openai_api_key="sk-test"))
    assert isinstance(stack.stt, OpenAiStt)
    client = stack.stt._client
    assert not client.is_closed()
    await stack.aclose()  # the interview service does this when the lifespan ends
    assert client.is_closed()
