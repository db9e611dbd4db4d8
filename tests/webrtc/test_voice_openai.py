"""The interview on the OpenAI path, end to end, against a local OpenAI-compatible server.

The service uses the real openai SDK (streamed chat, streamed PCM speech, uploaded
transcriptions); Silero VAD stays local. An aiortc caller speaks espeak-ng answers
through coturn. The fake server stands in for OpenAI only: what it is sent is checked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from backend.app.settings import Settings
from interview_service.espeak import EspeakVoice
from interview_service.plan import CLOSING_LINE
from tests.support.coturn import Coturn
from tests.support.fake_openai import FakeOpenAI, fake_openai
from tests.support.rtc_client import connected_interview, until

QUESTIONS = ["Tell me about your experience with Python.", "Why video pipelines?"]
ANSWER_1 = "I have built Python services for five years, mostly video rendering."
ANSWER_2 = "Because I enjoy making slow pipelines fast."


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI(
        hearing=ANSWER_1,
        replies=[
            f"[Q2] Thank you. {QUESTIONS[1]}",
            "Thank you, that is all from me. Goodbye! [END]",
        ],
        structured=json.dumps(
            {
                "summary": "Five years of Python on video rendering.",
                "scores": [
                    {
                        "criterion": "depth",
                        "score": 4,
                        "evidence": ["I have built Python services for five years"],
                    },
                    {"criterion": "examples", "score": 3, "evidence": ["mostly video rendering"]},
                ],
            }
        ),
    )
    async with fake_openai(server) as running:
        yield running


@pytest.fixture
async def call(
    fake: FakeOpenAI,
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
            interview_end_of_turn_silence_s=1.0,
            interview_provider_timeout_s=2.0,
            openai_api_key="sk-test",
            openai_base_url=fake.base_url,
            openai_llm_model="chat-test",
        )
    )
    interview, client = await connected_interview(
        app.client, {"user_id": "cand", "role": "platform engineer", "questions": QUESTIONS}
    )
    yield app, interview, client
    await client.close()


async def test_an_interview_on_the_openai_path_scores_with_evidence(
    call: Any, fake: FakeOpenAI
) -> None:
    app, interview, client = call
    voice = EspeakVoice()
    first = await voice.synthesize(ANSWER_1)
    second = await voice.synthesize(ANSWER_2)

    await until(lambda: client.transcript("interviewer"), 20, "the greeting")
    assert any(e.get("type") == "interviewer" and not e["scripted"] for e in client.events)
    # the line is logged once it has played: the streamed speech was heard by then
    await until(lambda: client.loud_frames_heard > 25, 5, "the greeting's audio")

    # 1. the transcription fails once: an apology, an error event, the call goes on
    fake.transcription.fail = 500
    client.microphone.enqueue_pcm(first)
    await until(lambda: "error" in client.event_types(), 20, "the error event")
    error = next(e for e in client.events if e.get("type") == "error")
    assert error["stage"] == "stt"
    await until(lambda: len(client.transcript("interviewer")) == 2, 20, "the apology")
    assert client.transcript("interviewer")[1]["text"].startswith("Sorry")

    # 2. the candidate repeats; the streamed reply asks question 2 (its marker stripped)
    fake.transcription.fail = None
    client.microphone.enqueue_pcm(first)
    await until(lambda: len(client.transcript("interviewer")) == 3, 30, "the reply")
    assert client.transcript("candidate")[0]["text"] == ANSWER_1
    assert client.transcript("interviewer")[2]["text"] == f"Thank you. {QUESTIONS[1]}"
    assert any(e.get("type") == "question" and e.get("index") == 1 for e in client.events)

    # 3. the last answer: the model ends the interview and the call completes itself
    fake.hearing = ANSWER_2
    client.microphone.enqueue_pcm(second)
    await until(lambda: "interview_complete" in client.event_types(), 30, "the end")
    status: dict[str, Any] = {}
    for _ in range(100):
        status = (await app.client.get(f"/api/interview/{interview}/status")).json()
        if status["status"] == "ended":
            break
        await asyncio.sleep(0.1)
    assert status["status"] == "ended"
    assert status["end_reason"] == "completed"

    results: dict[str, Any] = {}
    for _ in range(100):
        results = (await app.client.get(f"/api/interview/{interview}/results")).json()
        if results["evaluation"] != "pending":
            break
        await asyncio.sleep(0.1)
    assert results["evaluation"] == "ready"
    assert results["summary"] == "Five years of Python on video rendering."
    assert results["scores"] == [
        {
            "criterion": "depth",
            "score": 4,
            "max": 5,
            "evidence": ["I have built Python services for five years"],
        },
        {"criterion": "examples", "score": 3, "max": 5, "evidence": ["mostly video rendering"]},
    ]
    # the default rubric's other criteria had no quotes: asked again once, then unscored
    assert {u["criterion"] for u in results["unscored"]} == {"relevance", "communication"}
    assert len([r for r in fake.seen("chat") if "response_format" in r]) == 2
    # every time in the answers is ISO 8601 UTC
    for line in results["transcript"]:
        assert line["start"].endswith("Z")
        assert line["end"].endswith("Z")
    assert status["started_at"].endswith("Z")
    assert status["ended_at"].endswith("Z")
    assert status["connection_state"] == "closed"
    assert results["interviewer"]["scripted"] is False
    per_turn = results["metrics"]["per_turn"]
    assert len(per_turn) == 2
    for stage in ("stt_s", "llm_first_token_s", "tts_first_byte_s", "voice_to_voice_s"):
        assert stage in per_turn[0], per_turn[0]

    # what OpenAI was sent: real audio, the interviewer's prompt, PCM speech requests
    uploads = fake.seen("transcriptions")
    assert len(uploads) >= 3
    assert all(u["wav"] and u["bytes"] > 32_000 for u in uploads)
    streamed = [r for r in fake.seen("chat") if r.get("stream")]
    assert len(streamed) == 2
    assert streamed[0]["model"] == "chat-test"
    assert "platform engineer" in streamed[0]["messages"][0]["content"]
    assert streamed[1]["messages"][-1] == {"role": "user", "content": ANSWER_2}
    assert all(r["response_format"] == "pcm" for r in fake.seen("speech"))


async def test_drafted_questions_and_a_clock_that_closes_the_interview(
    coturn: Coturn,
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
) -> None:
    drafted = [f"Drafted question {n} about ECS and Redis?" for n in range(1, 5)]
    server = FakeOpenAI(structured=json.dumps({"questions": drafted}))
    async with fake_openai(server) as fake:
        app = await start_app(
            make_settings(
                turn_server=coturn.server,
                turn_secret=coturn.secret,
                interview_relay_only=True,
                interview_conversation="interviewer",
                interview_provider_timeout_s=2.0,
                openai_api_key="sk-test",
                openai_base_url=fake.base_url,
            )
        )
        body = {
            "user_id": "cand",
            "role": "platform engineer",
            "job_description": "Runs Python services on ECS with Redis.",
            "max_duration_s": 12,  # the closing line from 6 s on
        }
        interview, client = await connected_interview(app.client, body)
        try:
            await until(lambda: client.transcript("interviewer"), 20, "the greeting")
            assert drafted[0] in client.transcript("interviewer")[0]["text"]
            # the candidate says nothing: at the closing time the interviewer says goodbye
            await until(lambda: "interview_complete" in client.event_types(), 20, "the end")
        finally:
            await client.close()
        status: dict[str, Any] = {}
        for _ in range(100):
            status = (await app.client.get(f"/api/interview/{interview}/status")).json()
            if status["status"] == "ended":
                break
            await asyncio.sleep(0.1)
    assert status["end_reason"] == "completed"  # not the watchdog's max_duration
    assert status["duration_s"] < 12
    assert status["connection_state"] == "closed"
    results = (await app.client.get(f"/api/interview/{interview}/results")).json()
    assert results["plan"]["questions"] == drafted
    assert results["plan"]["questions_source"] == "drafted"
    assert results["transcript"][-1]["text"] == CLOSING_LINE
    assert results["scores"] is None  # no answer, nothing scored
