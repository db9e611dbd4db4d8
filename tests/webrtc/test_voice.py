"""The interviewer's voice loop on the local stack, end to end, in the namespace.

An aiortc caller plays answers synthesised offline with espeak-ng; the service runs
Silero VAD, faster-whisper (the bundled base model), the scripted interviewer and
espeak-ng. Nothing is faked on the server side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from backend.app.settings import Settings
from interview_service.espeak import EspeakVoice
from tests.support.coturn import Coturn
from tests.support.rtc_client import connected_interview, until

QUESTIONS = [
    "Tell me about your experience with Python.",
    "Why do you want to work on video generation pipelines at a company like ours, and "
    "what is the very first thing you would change in how we build and ship them?",
]
PAUSE = bytes(int(48_000 * 1.5) * 2)  # 1.5 s of silence after "and": thinking, not the end


@pytest.fixture
async def call(
    coturn: Coturn,
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
) -> Any:
    app = await start_app(
        make_settings(
            turn_server=coturn.server,
            turn_secret=coturn.secret,
            interview_relay_only=True,
            interview_conversation="interviewer",
        )
    )
    interview, client = await connected_interview(
        app.client, {"user_id": "cand", "role": "platform engineer", "questions": QUESTIONS}
    )
    yield app, interview, client
    await client.close()


async def test_interviewer_waits_through_a_pause_then_replies_and_is_cut_off_by_barge_in(
    call: Any,
) -> None:
    app, interview, client = call
    voice = EspeakVoice()
    first = await voice.synthesize("I have five years of experience with Python services and")
    second = await voice.synthesize("mostly Kubernetes operators for video rendering.")
    over = await voice.synthesize(
        "Sorry to interrupt, but could you repeat the question about the pipelines please?"
    )

    # 1. it greets first (the opening line is spoken, then logged as a transcript line)
    await until(lambda: client.transcript("interviewer"), 30, "the greeting")
    assert "platform engineer" in client.transcript("interviewer")[0]["text"]

    # 2. an answer with a thinking pause in the middle of a sentence is one turn
    client.microphone.enqueue_pcm(first + PAUSE + second)
    await until(lambda: client.transcript("candidate"), 30, "the candidate's line")
    answers = client.transcript("candidate")
    assert len(answers) == 1, answers  # it did not cut in at the pause
    heard = answers[0]["text"].lower()
    assert "python" in heard, heard  # STT really ran, on both halves
    assert "kubernetes" in heard or "operators" in heard, heard

    # 3. it replies after the candidate finishes: the next question starts playing
    await until(
        lambda: any(e.get("type") == "question" and e.get("index") == 1 for e in client.events),
        30,
        "the next question",
    )
    loud_before = client.loud_frames_heard
    await until(lambda: client.loud_frames_heard > loud_before + 25, 30, "the reply's audio")

    # 4. talking over it silences it promptly and the line is marked interrupted
    client.microphone.enqueue_pcm(over)
    await until(lambda: "barge_in" in client.event_types(), 15, "barge-in")
    await until(
        lambda: any(item["interrupted"] for item in client.transcript("interviewer")),
        15,
        "the interrupted line",
    )
    cut = next(item for item in client.transcript("interviewer") if item["interrupted"])
    assert len(cut["text"].split()) < len(QUESTIONS[1].split()) + 2  # cut to what was played

    results = (await app.client.get(f"/api/interview/{interview}/results")).json()
    assert results["scores"] is None  # the scripted interviewer invents no scores
    assert results["interviewer"]["scripted"] is True
    per_turn = results["metrics"]["per_turn"]
    assert per_turn, results["metrics"]
    for stage in ("end_of_utterance_s", "stt_s", "llm_first_token_s", "tts_first_byte_s"):
        assert stage in per_turn[0], per_turn[0]
    assert per_turn[0]["turn_model"] == "smart-turn-v3"  # the local end-of-turn model judged
    assert results["metrics"]["answer_word_counts"][0] >= 10
