"""The interview plan: follow-ups capped per question, and a clock that wraps up.

The pure part (:mod:`interview_service.plan`) is fed replies and times; the voice loop
is then run with the scripted interviewer and a paced microphone, in real time, with a
plan short enough to run out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from interview_service.plan import (
    CLOSING_LINE,
    Cue,
    InterviewPlan,
    PlanProgress,
    time_left_line,
)
from interview_service.voice.conversation import VoiceConversation
from interview_service.voice.decide import SilenceWindowJudge
from interview_service.voice.local import ScriptedInterviewer
from interview_service.voice.stack import VoiceStack
from interview_service.voice.turn_taking import TurnTakingConfig
from tests.support.voice_fakes import EnergyVad, FixedStt, FixedTts, voice_pcm
from tests.support.voice_line import Line

QUESTIONS = ("Why Python?", "Tell me about Redis.", "How do you test?", "What is next?")
LONG_ANSWER = "I have used it for years to build services that handle video at scale daily."


def _plan(**overrides: Any) -> InterviewPlan:
    return InterviewPlan("iv", "cand", questions=QUESTIONS, **overrides)


# ---- the pure plan ----------------------------------------------------------------------


def test_follow_ups_are_counted_per_question_and_capped() -> None:
    progress = PlanProgress(_plan(max_follow_ups=2))
    assert progress.may_follow_up()
    progress.replied(None)  # a follow-up (no new question)
    progress.replied(0)  # the same question again: a follow-up too
    assert not progress.may_follow_up()
    progress.replied(1)  # the next question: its own follow-ups
    assert progress.may_follow_up()
    assert progress.next_question() == 2
    assert progress.follow_ups == [2, 0]


def test_no_follow_ups_when_the_plan_allows_none() -> None:
    assert not PlanProgress(_plan(max_follow_ups=0)).may_follow_up()


def test_the_last_question_has_no_next() -> None:
    progress = PlanProgress(_plan())
    progress.replied(3)
    assert progress.next_question() is None


def test_the_clock_warns_once_then_closes() -> None:
    progress = PlanProgress(_plan(max_duration_s=1800))
    assert progress.cue(1000) is Cue.NONE
    assert progress.cue(1681) is Cue.WARN  # two minutes before the end
    assert progress.cue(1700) is Cue.NONE  # said once
    assert progress.cue(1781) is Cue.CLOSE  # 20 s before the end: the closing line
    assert progress.time_left_s(1781) == 19


def test_a_short_interview_scales_its_warning_and_closing() -> None:
    plan = _plan(max_duration_s=12)
    assert plan.warning_at_s == 4
    assert plan.closing_at_s == 6
    assert _plan(max_duration_s=60).closing_at_s == 40  # 20 s for the goodbye


@pytest.mark.parametrize(
    ("seconds", "line"),
    [
        (120, "We have about two minutes left."),
        (100, "We have about two minutes left."),
        (65, "We have about one minute left."),
        (20, "We have less than a minute left."),
        (600, "We have about ten minutes left."),
        (900, "We have about 15 minutes left."),
    ],
)
def test_the_warning_says_the_time_left_in_words(seconds: float, line: str) -> None:
    assert time_left_line(seconds) == line


# ---- in the voice loop ------------------------------------------------------------------


class Candidate(Line):
    """The conversation's other end (tests/support/voice_line.py), answering in turn."""

    def said(self) -> list[str]:
        return [item["text"] for item in self.lines("interviewer")]

    async def answer_after(self, lines: int, seconds: float, timeout_s: float = 10) -> None:
        """Speak for ``seconds`` once the interviewer has said ``lines`` lines."""
        deadline = time.monotonic() + timeout_s
        while len(self.said()) < lines:
            assert time.monotonic() < deadline, f"no line {lines}: {self.events}"
            await asyncio.sleep(0.02)
        self.microphone.enqueue_pcm(voice_pcm(seconds))


@pytest.fixture
async def candidates() -> AsyncIterator[list[Candidate]]:
    made: list[Candidate] = []
    yield made
    for candidate in made:
        await candidate.stop()


def _call(
    candidates: list[Candidate], plan: InterviewPlan, answers: list[str]
) -> tuple[Candidate, asyncio.Task[None]]:
    stack = VoiceStack(
        vad=EnergyVad,
        stt=FixedStt(answers),
        interviewer=lambda p: ScriptedInterviewer(
            p.role, p.questions, max_follow_ups=p.max_follow_ups
        ),
        tts=FixedTts(seconds_per_word=0.05),
        turns=TurnTakingConfig(max_silence_s=0.5, barge_in_s=0.5),
        end_of_turn=lambda interviewer: SilenceWindowJudge(0.5),
        provider_timeout_s=2.0,
    )
    candidate = Candidate(VoiceConversation(plan, stack))
    candidates.append(candidate)
    return candidate, candidate.start()


async def test_short_answers_get_at_most_the_plans_follow_ups(
    candidates: list[Candidate],
) -> None:
    candidate, _ = _call(candidates, _plan(max_follow_ups=2), ["Yes."])
    for line in range(1, 4):  # three short answers to the first question
        await candidate.answer_after(line, 0.6)
    await candidate.answer_after(4, 0.1)  # (just to wait for the fourth line)
    said = candidate.said()
    assert said[1].startswith("Thank you. Could you give me a concrete example")
    assert said[2].startswith("Thank you. What was the hardest part")
    assert said[3] == f"Thank you. {QUESTIONS[1]}"  # two follow-ups, then it moves on
    assert candidate.conversation.progress.follow_ups == [2, 0]


async def test_a_plan_that_runs_out_of_time_warns_then_closes(
    candidates: list[Candidate],
) -> None:
    # 18 s: the warning from 6 s on (with the next reply), the closing line at 9 s
    many = tuple(f"Question number {n}?" for n in range(1, 11))
    plan = InterviewPlan("iv", "cand", questions=many, max_duration_s=18, max_follow_ups=0)
    candidate, run = _call(candidates, plan, [LONG_ANSWER])
    began = time.monotonic()
    lines = 1
    while not any(text.startswith("We have") for text in candidate.said()):
        await candidate.answer_after(lines, 1.0)
        lines += 1
        await candidate.answer_after(lines, 0.0)
        assert time.monotonic() - began < 9, candidate.said()
    warned_at = time.monotonic() - began
    # the candidate says nothing more: at the closing time the silence gets the goodbye
    await asyncio.wait_for(run, timeout=10)
    ended_at = time.monotonic() - began
    said = candidate.said()
    warning = next(text for text in said if text.startswith("We have"))
    assert warning.startswith("We have less than a minute left. Thank you. ")
    assert said[-1] == CLOSING_LINE
    assert said.count(CLOSING_LINE) == 1
    assert warned_at >= 6
    assert plan.closing_at_s <= ended_at < plan.max_duration_s + 1
    complete = [e for e in candidate.events if e["type"] == "interview_complete"]
    assert complete == [{"type": "interview_complete", "reason": "time_up"}]
