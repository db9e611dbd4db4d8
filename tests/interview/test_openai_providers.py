"""The OpenAI providers with the real openai SDK, against a local OpenAI-compatible server."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import numpy as np
import openai
import pytest

from interview_service.scoring import EvaluationError
from interview_service.voice.openai_providers import (
    DraftingError,
    MarkerFilter,
    OpenAiInterviewer,
    OpenAiQuestionDrafter,
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


def _evaluation(*scores: tuple[str, int, list[str]], summary: str = "Solid.") -> str:
    return json.dumps(
        {
            "summary": summary,
            "scores": [
                {"criterion": name, "score": score, "evidence": quotes}
                for name, score, quotes in scores
            ],
        }
    )


RUBRIC = [
    {"name": "depth", "description": "Technical depth", "scale": 5},
    {"name": "examples", "description": "Concrete examples", "scale": 4},
]
PLAN = {"role": "engineer", "questions": QUESTIONS, "rubric": RUBRIC}
REAL = "I built Kubernetes operators for video rendering"
INVENTED = "I led a team of fifty"


async def test_results_keep_only_scores_backed_by_the_candidates_words(fake: FakeOpenAI) -> None:
    # both answers carry the invented quote: it is rejected, re-asked once, then dropped
    fake.structured = [_evaluation(("depth", 4, [REAL]), ("examples", 3, [INVENTED]))]
    scored = await OpenAiResults(client(fake), "judge").evaluate(PLAN, TRANSCRIPT)
    assert scored.summary == "Solid."
    assert scored.scores == [{"criterion": "depth", "score": 4, "max": 5, "evidence": [REAL]}]
    assert scored.unscored[0]["criterion"] == "examples"
    assert INVENTED in scored.unscored[0]["reason"]
    assert any(INVENTED in note for note in scored.notes)

    first, again = fake.seen("chat")
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["strict"] is True
    schema = first["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["scores"]["items"]["properties"]["criterion"]["enum"] == [
        "depth",
        "examples",
    ]
    assert "Because I love video." in first["messages"][1]["content"]
    assert "examples (1 to 4): Concrete examples" in first["messages"][1]["content"]
    # the re-ask names what was wrong, and only the failing criterion
    reask = again["messages"][-1]["content"]
    assert INVENTED in reask
    assert "examples" in reask
    assert "depth:" not in reask


async def test_a_reask_that_quotes_correctly_is_kept(fake: FakeOpenAI) -> None:
    fake.structured = [
        _evaluation(("depth", 4, [REAL]), ("examples", 3, [INVENTED])),
        _evaluation(("examples", 2, ["because I love video"]), summary=""),
    ]
    scored = await OpenAiResults(client(fake), "judge").evaluate(PLAN, TRANSCRIPT)
    assert [s["criterion"] for s in scored.scores] == ["depth", "examples"]
    assert scored.scores[1] == {
        "criterion": "examples",
        "score": 2,
        "max": 4,
        "evidence": ["because I love video"],
    }
    assert scored.unscored == []
    assert scored.summary == "Solid."  # the re-ask's empty summary does not replace it
    assert len(fake.seen("chat")) == 2


async def test_good_results_are_not_asked_twice(fake: FakeOpenAI) -> None:
    fake.structured = [_evaluation(("depth", 5, [REAL]), ("examples", 4, [REAL.upper() + "!"]))]
    scored = await OpenAiResults(client(fake), "judge").evaluate(PLAN, TRANSCRIPT)
    assert [s["score"] for s in scored.scores] == [5, 4]
    assert len(fake.seen("chat")) == 1


async def test_the_interviewers_words_are_no_evidence(fake: FakeOpenAI) -> None:
    question = "Tell me about your Python work"  # QUESTIONS[0], said by the interviewer
    fake.structured = [_evaluation(("depth", 4, [question]), ("examples", 3, [REAL]))]
    scored = await OpenAiResults(client(fake), "judge").evaluate(PLAN, TRANSCRIPT)
    assert [s["criterion"] for s in scored.scores] == ["examples"]
    assert scored.unscored[0]["criterion"] == "depth"


@pytest.mark.parametrize(
    "evaluation",
    ["not json at all", json.dumps({"summary": "ok", "scores": "none"})],
)
async def test_invalid_results_are_refused(fake: FakeOpenAI, evaluation: str) -> None:
    fake.structured = evaluation
    with pytest.raises(EvaluationError):
        await OpenAiResults(client(fake), "judge").evaluate({}, TRANSCRIPT)


async def test_a_score_off_the_scale_is_asked_again_then_dropped(fake: FakeOpenAI) -> None:
    fake.structured = [_evaluation(("depth", 9, [REAL]), ("examples", 5, [REAL]))]
    scored = await OpenAiResults(client(fake), "judge").evaluate(PLAN, TRANSCRIPT)
    assert scored.scores == []  # examples' scale is 1 to 4
    assert {u["criterion"] for u in scored.unscored} == {"depth", "examples"}
    assert "outside 1 to 5" in scored.unscored[0]["reason"]


# ---- questions from a job description ---------------------------------------------------

JOB = "We build a video pipeline in Python on AWS: ECS, S3, Redis and WebRTC."


async def test_questions_are_drafted_from_the_job_description(fake: FakeOpenAI) -> None:
    drafted = [f"Question {n} about  Python on ECS?" for n in range(1, 6)]
    fake.structured = json.dumps({"questions": drafted})
    questions = await OpenAiQuestionDrafter(client(fake), "chat-test").draft(
        "platform engineer", JOB, language="fr"
    )
    assert questions == [q.replace("  ", " ") for q in drafted]
    request = fake.seen("chat")[0]
    assert request["response_format"]["json_schema"]["name"] == "interview_questions"
    assert JOB in request["messages"][1]["content"]
    assert "platform engineer" in request["messages"][1]["content"]
    assert "French" in request["messages"][0]["content"]


@pytest.mark.parametrize("count", [2, 9])
async def test_too_few_or_too_many_drafted_questions_are_refused(
    fake: FakeOpenAI, count: int
) -> None:
    fake.structured = json.dumps({"questions": [f"Question {n}?" for n in range(count)]})
    with pytest.raises(DraftingError):
        await OpenAiQuestionDrafter(client(fake), "chat-test").draft(None, JOB, language="en")


async def test_the_plan_reaches_the_interviewer_as_instructions(fake: FakeOpenAI) -> None:
    interviewer = OpenAiInterviewer(
        client(fake),
        "chat-test",
        role=None,
        questions=QUESTIONS,
        language="en",
        job_description=JOB,
        max_follow_ups=2,
    )
    outcome = Reply(may_follow_up=False, time_warning="We have about two minutes left.")
    await _collect(interviewer.reply([Turn("candidate", "I like it.")], outcome))
    messages = fake.seen("chat")[0]["messages"]
    assert JOB in messages[0]["content"]
    assert "up to 2 brief follow-up" in messages[0]["content"]
    notes = [m["content"] for m in messages if m["role"] == "system"][1:]
    assert "do not ask another follow-up" in notes[0]
    assert "We have about two minutes left." in notes[1]
    assert "[END]" in notes[1]
