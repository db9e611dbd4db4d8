"""The OpenAI providers with the real openai SDK, against a local OpenAI-compatible server."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import numpy as np
import openai
import pytest

from interview_service.voice.openai_providers import (
    EvaluationError,
    MarkerFilter,
    OpenAiInterviewer,
    OpenAiResults,
    OpenAiStt,
    OpenAiTts,
    make_client,
)
from interview_service.voice.providers import Reply, Turn
from tests.support.fake_openai import FakeOpenAI, fake_openai

QUESTIONS = ["Tell me about your Python work.", "Why video pipelines?"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with fake_openai() as server:
        yield server


def client(fake: FakeOpenAI, timeout_s: float = 5.0) -> openai.AsyncOpenAI:
    return make_client("sk-test", fake.base_url, timeout_s=timeout_s)


async def _collect(stream: AsyncIterator[str]) -> list[str]:
    return [piece async for piece in stream]


# ---- STT ------------------------------------------------------------------------------------


async def test_transcription_uploads_a_wav_and_returns_the_text(fake: FakeOpenAI) -> None:
    fake.transcripts = ["  I have five years of Python.  "]
    stt = OpenAiStt(client(fake), "whisper-test")
    audio = (0.1 * np.sin(np.arange(16_000) / 5)).astype(np.float32)
    assert await stt.transcribe(audio, language="en-GB") == "I have five years of Python."
    assert await stt.transcribe(audio, language="en", prompt="My last job:") == (
        "I have five years of Python."
    )
    upload, with_prompt = fake.seen("transcriptions")
    assert b'name="prompt"' not in upload["raw"]
    assert b'name="prompt"\r\n\r\nMy last job:' in with_prompt["raw"]
    assert upload["wav"]
    assert upload["bytes"] > 32_000
    assert b"whisper-test" in upload["raw"]
    assert b'name="language"\r\n\r\nen' in upload["raw"]


async def test_transcription_errors_surface_as_sdk_errors(fake: FakeOpenAI) -> None:
    fake.transcription.fail = 400
    stt = OpenAiStt(client(fake), "whisper-test")
    with pytest.raises(openai.BadRequestError):
        await stt.transcribe(np.zeros(1600, dtype=np.float32), language="en")
    assert len(fake.seen("transcriptions")) == 1  # a 4xx is not retried


async def test_a_slow_server_times_out_within_the_bound(fake: FakeOpenAI) -> None:
    fake.transcription.delay_s = 5
    stt = OpenAiStt(client(fake, timeout_s=0.3), "whisper-test")
    began = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await stt.transcribe(np.zeros(1600, dtype=np.float32), language="en")
    # one retry at most: two attempts of 0.3 s and the SDK's short backoff
    assert time.monotonic() - began < 3.0


# ---- the interviewer --------------------------------------------------------------------


async def test_the_interviewer_streams_its_reply_without_markers(fake: FakeOpenAI) -> None:
    fake.replies = ["[Q2] Thank you. Why did you choose video pipelines?"]
    interviewer = OpenAiInterviewer(
        client(fake), "chat-test", role="platform engineer", questions=QUESTIONS, language="de"
    )
    outcome = Reply()
    history = [
        Turn("interviewer", interviewer.opening()),
        Turn("candidate", "I wrote services"),
        Turn("candidate", "in Python for five years."),
    ]
    pieces = await _collect(interviewer.reply(history, outcome))
    assert len(pieces) > 3  # it streamed
    assert "".join(pieces).strip() == "Thank you. Why did you choose video pipelines?"
    assert outcome.question_index == 1
    assert not outcome.finished
    assert outcome.metadata["language_model"] is True

    request = fake.seen("chat")[0]
    assert request["stream"] is True
    assert request["model"] == "chat-test"
    system, *turns = request["messages"]
    assert "platform engineer" in system["content"]
    assert "German" in system["content"]
    assert "2. Why video pipelines?" in system["content"]
    # the candidate's two utterances are one user message
    assert [m["role"] for m in turns] == ["assistant", "user"]
    assert turns[1]["content"] == "I wrote services in Python for five years."


async def test_the_end_marker_finishes_the_interview(fake: FakeOpenAI) -> None:
    fake.replies = ["Thank you for your time. Goodbye! [END]"]
    interviewer = OpenAiInterviewer(
        client(fake), "chat-test", role=None, questions=QUESTIONS, language="en"
    )
    outcome = Reply()
    text = "".join(await _collect(interviewer.reply([Turn("candidate", "done")], outcome)))
    assert outcome.finished
    assert "[" not in text
    assert "Goodbye!" in text


async def test_the_semantic_check_reads_the_verdict(fake: FakeOpenAI) -> None:
    interviewer = OpenAiInterviewer(
        client(fake), "chat-test", role=None, questions=QUESTIONS, language="en"
    )
    history = [Turn("interviewer", QUESTIONS[0])]
    fake.verdicts = ["incomplete"]
    assert await interviewer.is_complete(history, "I mostly worked on, um, and") is False
    fake.verdicts = ["Complete."]
    assert await interviewer.is_complete(history, "Five years of Django.") is True
    request = fake.seen("chat")[-1]
    assert request["max_tokens"] == 3
    assert not request.get("stream")
    assert QUESTIONS[0] in request["messages"][1]["content"]


async def test_a_failing_chat_raises_instead_of_yielding_nothing(fake: FakeOpenAI) -> None:
    fake.chat.fail = 500
    interviewer = OpenAiInterviewer(
        client(fake), "chat-test", role=None, questions=QUESTIONS, language="en"
    )
    with pytest.raises(openai.InternalServerError):
        await _collect(interviewer.reply([Turn("candidate", "hi")], Reply()))
    assert len(fake.seen("chat")) == 2  # a 5xx is retried once, no more


@pytest.mark.parametrize(
    "pieces",
    [
        ["[Q2] Next", " one."],
        ["[", "Q", "2]", " Next one."],
        ["Next one. [E", "ND]"],
        ["[Q9] Next one."],  # a question the plan does not have is ignored
    ],
)
def test_markers_split_across_pieces_are_removed(pieces: list[str]) -> None:
    outcome = Reply()
    markers = MarkerFilter(outcome, questions=2)
    text = "".join(markers.feed(p) for p in pieces) + markers.close()
    assert text.strip() == "Next one."
    joined = "".join(pieces)
    assert outcome.finished == ("END" in joined)
    assert outcome.question_index == (1 if "Q2" in joined else None)


def test_brackets_that_are_not_markers_are_kept() -> None:
    markers = MarkerFilter(Reply(), questions=2)
    text = markers.feed("Use a list [like this") + markers.feed(" one] please.") + markers.close()
    assert text == "Use a list [like this one] please."


# ---- TTS ------------------------------------------------------------------------------------


async def test_speech_streams_48k_frames_from_24k_pcm(fake: FakeOpenAI) -> None:
    fake.speech_s_per_char = 0.02
    tts = OpenAiTts(client(fake), "tts-test", "alloy")
    text = "Thank you. That was a very clear answer, let us move on."
    chunks = [c async for c in tts.synthesize(text, language="en")]
    assert len(chunks) > 1  # it streamed
    assert all(len(c) % 1920 == 0 for c in chunks[:-1])  # whole 20 ms frames at 48 kHz
    seconds = sum(len(c) for c in chunks) / 2 / 48_000
    assert abs(seconds - len(text) * 0.02) < 0.05
    request = fake.seen("speech")[0]
    assert request == {
        "model": "tts-test",
        "voice": "alloy",
        "input": text,
        "response_format": "pcm",
    }
    audio = np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.float32) / 32768
    assert np.sqrt(np.mean(audio**2)) > 0.05  # the voice survived resampling


# ---- results --------------------------------------------------------------------------------

TRANSCRIPT = [
    Turn("interviewer", QUESTIONS[0]),
    Turn("candidate", "I built Kubernetes operators for video rendering, in Python."),
    Turn("interviewer", QUESTIONS[1]),
    Turn("candidate", "Because I love video."),
]


async def test_results_keep_scores_backed_by_the_candidates_words(fake: FakeOpenAI) -> None:
    fake.evaluation = json.dumps(
        {
            "summary": "Experienced with operators.",
            "scores": [
                {
                    "criterion": "depth",
                    "score": 4,
                    "evidence": ["I built Kubernetes operators for video rendering"],
                },
                {"criterion": "examples", "score": 5, "evidence": ["I led a team of fifty"]},
            ],
        }
    )
    results = OpenAiResults(client(fake), "judge")
    summary, scores = await results.evaluate(
        {"role": "engineer", "questions": QUESTIONS}, TRANSCRIPT
    )
    assert summary == "Experienced with operators."
    # the invented quote is dropped, and its score with it
    assert scores == [
        {
            "criterion": "depth",
            "score": 4,
            "evidence": ["I built Kubernetes operators for video rendering"],
        }
    ]
    request = fake.seen("chat")[0]
    assert request["response_format"] == {"type": "json_object"}
    assert "Because I love video." in request["messages"][1]["content"]


@pytest.mark.parametrize(
    "evaluation",
    [
        "not json at all",
        json.dumps(
            {"summary": "ok", "scores": [{"criterion": "depth", "score": 9, "evidence": []}]}
        ),
        json.dumps(
            {"summary": "ok", "scores": [{"criterion": "x", "score": 3, "evidence": ["nope"]}]}
        ),
    ],
)
async def test_invalid_results_are_refused(fake: FakeOpenAI, evaluation: str) -> None:
    fake.evaluation = evaluation
    with pytest.raises(EvaluationError):
        await OpenAiResults(client(fake), "judge").evaluate({}, TRANSCRIPT)
