"""The interview demo page as a person uses it, in headless Chromium, inside the namespace.

The fake microphone is a WAV synthesised offline with espeak-ng that speaks with real
pauses: silence while the interviewer greets, an answer with a thinking pause in the
middle of a sentence, then silence. The service runs the local stack (Silero VAD,
faster-whisper, the scripted interviewer, espeak-ng) through coturn; nothing is faked on
the server side. The assertions read what the page shows: the bubbles, the state, the
results.
"""

from __future__ import annotations

import asyncio
import json
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from interview_service.espeak import EspeakVoice
from tests.support.chromium import Chromium
from tests.support.coturn import Coturn
from tests.support.live_server import live_server

RATE = 48_000


def silence(seconds: float) -> bytes:
    return bytes(int(RATE * seconds) * 2)


@pytest.fixture
async def speaking_microphone(tmp_path: Path) -> Path:
    """The candidate: quiet while greeted, then an answer with a 1 s pause mid-sentence.

    Chromium loops the file; the trailing silence leaves time to end the call before the
    answer comes round again.
    """
    voice = EspeakVoice()
    first = await voice.synthesize("I built a streaming data pipeline in Python, and")
    second = await voice.synthesize("it moved events from Kafka into Postgres for analytics.")
    pcm = silence(12.0) + first + silence(1.0) + second + silence(20.0)
    path = tmp_path / "candidate.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm)
    return path


PAGE_STATE = """JSON.stringify({
  demo: window.interviewDemo,
  status: document.getElementById('status').textContent,
  reason: document.getElementById('reason').textContent,
  ice: document.getElementById('ice').textContent,
  bubbles: [...document.querySelectorAll('#conversation .bubble')].map((li) => ({
    role: li.classList.contains('candidate') ? 'candidate' : 'interviewer',
    text: li.querySelector('.text').textContent,
    final: li.dataset.final === 'true',
    interrupted: li.classList.contains('interrupted'),
    tag: li.querySelector('.tag') ? li.querySelector('.tag').textContent : null,
    meta: li.querySelector('.meta').textContent,
  })),
  notices: [...document.querySelectorAll('#conversation .notice')].map((li) => li.textContent),
  resultsShown: !document.getElementById('results').hidden,
  resultsStatus: document.getElementById('results-status').textContent,
  resultLines: [...document.querySelectorAll('#results-transcript li')].map((li) => li.textContent),
  metrics: [...document.querySelectorAll('#results-metrics dt')].map((dt) => dt.textContent),
  perTurnRows: document.querySelectorAll('#results-turns tbody tr').length,
  scores: [...document.querySelectorAll('#results-scores tbody tr')].map((tr) => tr.textContent),
  report: document.getElementById('report').getAttribute('href'),
  question: document.getElementById('question').textContent,
  interviewer: document.getElementById('interviewer-name').textContent,
})"""


async def _page(browser: Chromium) -> dict[str, Any] | None:
    """The page's state, or None until its script has run (``window.interviewDemo``)."""
    raw = await browser.evaluate(PAGE_STATE)
    page: dict[str, Any] | None = None if raw is None else json.loads(raw)
    return page if page is not None and "demo" in page else None


async def _until(
    browser: Chromium, condition: Callable[[dict[str, Any]], object], what: str, timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        page = await _page(browser)
        if page is not None and condition(page):
            return page
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {page}\n{browser.log_tail()}")
        await asyncio.sleep(0.3)


def _recognised(page: dict[str, Any]) -> list[str]:
    return [b["text"] for b in page["bubbles"] if b["role"] == "candidate" and b["final"]]


def _replied(page: dict[str, Any]) -> bool:
    """An interviewer line with words, after the candidate's first recognised line."""
    roles = [(b["role"], b["final"] and b["text"].strip("… —")) for b in page["bubbles"]]
    first_answer = next((i for i, (role, _) in enumerate(roles) if role == "candidate"), None)
    return first_answer is not None and any(
        role == "interviewer" and words for role, words in roles[first_answer + 1 :]
    )


@pytest.mark.slow
async def test_a_candidate_talks_with_pauses_sees_the_conversation_ends_and_gets_results(
    coturn: Coturn,
    make_settings: Callable[..., Settings],
    speaking_microphone: Path,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        turn_server=coturn.server,
        turn_secret=coturn.secret,
        interview_relay_only=True,
        interview_conversation="interviewer",
    )
    async with live_server(settings) as server:
        browser = Chromium(tmp_path / "chromium", fake_audio=speaking_microphone)
        try:
            await browser.open(
                f"{server.base_url}/demo/interview?autostart=1&user_id=chromium"
                "&role=data%20engineer"
            )
            # the greeting is a bubble with its words, and the page says who is talking
            page = await _until(
                browser,
                lambda p: (
                    any(
                        b["role"] == "interviewer" and "data engineer" in b["text"]
                        for b in p["bubbles"]
                    )
                    or p["demo"]["errors"]
                ),
                "the greeting's bubble",
                60,
            )
            assert not page["demo"]["errors"], page["demo"]["errors"]
            assert page["status"] == "active"
            assert page["interviewer"].startswith("scripted")

            # the answer, pause and all, is recognised and shown; the interviewer replies
            page = await _until(
                browser, lambda p: _recognised(p) and _replied(p), "the answer and the reply", 60
            )
            heard = " ".join(_recognised(page)).lower()
            assert any(word in heard for word in ("python", "pipeline", "kafka", "postgres")), heard
            assert page["demo"]["micMax"] > 0.3  # the meter moved with the fake microphone
            assert page["question"].isdigit()  # the question being asked

            await browser.evaluate("document.getElementById('end').click()")
            page = await _until(
                browser,
                lambda p: p["resultsShown"] and p["demo"]["results"] is not None,
                "the results",
                30,
            )
            # ended, and it stays ended: nothing late turns it back into a live call
            for _ in range(6):
                assert page["status"] == "ended", page["status"]
                assert page["ice"] == "closed"
                await asyncio.sleep(0.5)
                page = await _page(browser) or page
            states = page["demo"]["states"]
            assert states[states.index("ended") :] == ["ended"] * len(
                states[states.index("ended") :]
            ), states

            # the results: the transcript with both voices, measurements, the report link
            lines = page["resultLines"]
            assert lines[0].startswith("Interviewer"), lines
            assert any(line.startswith("You") for line in lines), lines
            assert {"Answers", "Ended because"} <= set(page["metrics"]), page["metrics"]
            assert page["perTurnRows"] >= 1  # turn_metrics of the reply
            assert page["resultsStatus"].startswith("No scores")  # the local stack never scores
            interview = page["demo"]["sessionId"]
            assert page["report"] == f"/api/interview/{interview}/report"
            async with httpx.AsyncClient(base_url=server.base_url) as http:
                status = (await http.get(f"/api/interview/{interview}/status")).json()
            assert status["status"] == "ended"
            assert status["end_reason"] == "ended_by_client"
        finally:
            await browser.close()


EVENTS: list[dict[str, Any] | str] = [
    {"type": "state", "status": "active", "reason": None},
    {"type": "interviewer", "name": "scripted", "scripted": True},
    # a line shown while spoken (final: false), then completed under the same id
    {
        "type": "transcript",
        "item": {
            "id": "a1",
            "role": "interviewer",
            "text": "Hello and",
            "start": 1_764_500_000.5,
            "final": False,
        },
    },
    {
        "type": "transcript",
        "item": {
            "id": "a1",
            "role": "interviewer",
            "text": "Hello and welcome. Why Python?",
            "start": "2025-11-30T10:00:00.500Z",
            "end": "2025-11-30T10:00:03Z",
            "final": True,
        },
    },
    {"type": "question", "index": 0},
    {"type": "something_new", "payload": [1, 2, 3]},
    {"type": "speech_started", "ts": 1_764_500_004.0},
    {"type": "transcript", "item": {"role": "candidate", "text": "Because it reads well."}},
    {
        "type": "transcript",
        "item": {
            "id": "a2",
            "role": "interviewer",
            "text": "Thank you. Tell me about a time when",
            "final": False,
        },
    },
    # a backchannel: the interviewer goes on, and no empty bubble of the candidate stays
    {"type": "speech_started", "ts": 1_764_500_006.0},
    {"type": "resumed", "held_ms": 300, "words": "yeah"},
    "check: the backchannel left no bubble",
    # a real interruption: the line is cut to what was heard
    {"type": "speech_started", "ts": 1_764_500_007.0},
    {"type": "barge_in", "dropped_ms": 840, "heard": "Thank you. Tell me"},
    {
        "type": "transcript",
        "item": {
            "id": "a2",
            "role": "interviewer",
            "text": "Thank you. Tell me about a time when",
            "heard": "Thank you. Tell me",
            "interrupted": True,
        },
    },
    {"type": "transcript", "item": {"role": "candidate", "text": "Sorry, which time?"}},
    {"type": "turn_metrics", "metrics": {"turn": 1, "voice_to_voice_s": 0.61}},
    {"type": "transcript"},
    {"type": "error", "stage": "stt", "message": "TimeoutError"},
    {"no_type": True},
    {"type": "state", "status": "ended", "reason": "completed"},
    {"type": "state", "status": "active"},
]

RESULTS = {
    "session_id": "abc",
    "status": "ended",
    "evaluation": "ready",
    "summary": "Clear answers.",
    "scores": [{"criterion": "communication", "score": 4, "max": 5,
                "evidence": ["Because it reads well."]}],
    "transcript": [
        {"role": "interviewer", "text": "Why Python?", "start": "2025-11-30T10:00:00Z",
         "end": "2025-11-30T10:00:02Z"},
        {"role": "candidate", "text": "Because it reads well.", "start": 1_764_496_805.0,
         "end": 1_764_496_807.0, "interrupted": False},
    ],
    "metrics": {"duration_s": 12.5, "turns": 1, "end_reason": "completed",
                "candidate_talk_ratio": 0.4, "per_turn": [{"turn": 1, "voice_to_voice_s": 0.61}],
                "something_new": {"nested": True}},
}  # fmt: skip


async def test_the_page_shows_what_the_events_say_and_tolerates_what_it_does_not_know(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Lines shown while spoken, interruptions, unknown or partial events, both time
    formats, a late state after the end, and scores: fed as the data channel would."""
    wav = tmp_path / "quiet.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(silence(1.0))
    async with live_server(make_settings()) as server:
        browser = Chromium(tmp_path / "chromium", fake_audio=wav)
        try:
            await browser.open(f"{server.base_url}/demo/interview")
            await _until(browser, lambda p: p["status"] == "idle", "the page", 30)
            unlabelled = await browser.evaluate(
                "[...document.querySelectorAll('input, select, meter')]"
                ".filter((e) => !e.labels || !e.labels.length).map((e) => e.id)"
                ".concat([...document.querySelectorAll('button')]"
                ".filter((b) => !b.textContent.trim()).map((b) => b.id))"
            )
            assert unlabelled == []  # every control has a name a screen reader can say
            for event in EVENTS:
                if isinstance(event, str):  # a point to look at the page mid-way
                    page = await _page(browser)
                    assert page is not None
                    candidate = [b for b in page["bubbles"] if b["role"] == "candidate"]
                    assert [b["text"] for b in candidate] == ["Because it reads well."], event
                    assert "yeah" in page["bubbles"][-1]["meta"]  # the line went on
                    continue
                await browser.evaluate(f"window.interviewDemo.receive({json.dumps(event)})")
            page = await _page(browser)
            assert page is not None
            bubbles = page["bubbles"]
            assert [(b["role"], b["text"]) for b in bubbles] == [
                ("interviewer", "Hello and welcome. Why Python?"),  # one bubble, completed
                ("candidate", "Because it reads well."),
                ("interviewer", "Thank you. Tell me —"),  # what was heard, cut
                ("candidate", "Sorry, which time?"),
            ]
            assert [b["interrupted"] for b in bubbles] == [False, False, True, False]
            assert all(b["final"] for b in bubbles)
            assert "interrupted" in (bubbles[2]["tag"] or "")
            assert "replied 0.61 s" in bubbles[2]["meta"]
            assert bubbles[0]["meta"]  # a clock time from the ISO start
            assert any("problem (stt)" in text for text in page["notices"])
            assert page["status"] == "ended"  # the late "active" did not revive the call
            assert page["question"] == "1"

            await browser.evaluate(f"window.interviewDemo.showResults({json.dumps(RESULTS)})")
            page = await _page(browser)
            assert page is not None
            assert page["resultsShown"]
            assert len(page["scores"]) == 1
            assert "communication" in page["scores"][0]
            assert "4 / 5" in page["scores"][0]
            assert "Because it reads well." in page["scores"][0]
            assert [line.split(" ")[0] for line in page["resultLines"]] == ["Interviewer", "You"]
            assert "Your share of talk time" in page["metrics"]
            assert page["perTurnRows"] == 1
            assert page["report"] == "/api/interview/abc/report"
        finally:
            await browser.close()


@pytest.mark.slow
async def test_when_the_server_ends_the_call_the_page_says_so_and_shows_the_results(
    coturn: Coturn, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Nobody presses End: the call reaches its maximum duration."""
    wav = tmp_path / "quiet.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(silence(1.0))
    settings = make_settings(
        turn_server=coturn.server,
        turn_secret=coturn.secret,
        interview_relay_only=True,
        interview_max_duration_s=4,
    )
    async with live_server(settings) as server:
        browser = Chromium(tmp_path / "chromium", fake_audio=wav)
        try:
            await browser.open(f"{server.base_url}/demo/interview?autostart=1&user_id=chromium")
            page = await _until(
                browser, lambda p: p["status"] == "active" or p["demo"]["errors"], "active", 30
            )
            assert not page["demo"]["errors"], page["demo"]["errors"]
            page = await _until(browser, lambda p: p["resultsShown"], "the results", 30)
            assert page["status"] == "ended"
            assert page["ice"] == "closed"  # the page let go of the call
            assert "max duration" in page["reason"]
            assert page["resultLines"][0].startswith("Interviewer")  # the greeting
            assert await browser.evaluate("document.getElementById('end').disabled")
            assert not await browser.evaluate("document.getElementById('start').disabled")
        finally:
            await browser.close()
