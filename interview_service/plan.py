"""The interview's plan: its questions, the follow-ups each may get, and its clock.

Pure: no I/O and no clock of its own. :class:`InterviewPlan` is what an interview was
started with; :class:`PlanProgress` is fed what the interviewer did and the time spent,
and says what comes next: may the interviewer follow up, which question is next, and
when to wrap up ("we have about two minutes left") and close.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DEFAULT_QUESTIONS = (
    "Tell me about a project you are proud of.",
    "What would you like to learn next?",
)
WARNING_S = 120.0  # the warning comes this long before the end ("two minutes left")
CLOSING_S = 20.0  # the closing line starts this long before the end
CLOSING_LINE = "We are out of time, so let's stop here. Thank you for your answers today. Goodbye."
NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@dataclass(frozen=True, slots=True)
class InterviewPlan:
    """What the interviewer needs to know about one interview."""

    interview_id: str
    user_id: str
    role: str | None = None
    questions: tuple[str, ...] = ()
    language: str = "en"
    max_duration_s: float = 1800.0
    job_description: str | None = None
    max_follow_ups: int = 1  # per question
    extra: Mapping[str, Any] = field(default_factory=dict)

    # A short interview scales both down, so the closing line still has time to be heard.

    @property
    def warning_at_s(self) -> float:
        """When the interviewer says how little time is left (seconds into the call)."""
        return self.max_duration_s - min(WARNING_S, self.max_duration_s * 2 / 3)

    @property
    def closing_at_s(self) -> float:
        """When the interviewer stops asking and says goodbye (seconds into the call)."""
        return self.max_duration_s - min(CLOSING_S, self.max_duration_s / 2)


class Cue(StrEnum):
    NONE = "none"
    WARN = "warn"  # say how much time is left, then go on
    CLOSE = "close"  # say the closing line and end


@dataclass(slots=True)
class PlanProgress:
    """Where an interview stands in its plan; fed each reply and the time spent."""

    plan: InterviewPlan
    question: int = 0  # the question on the table (the greeting asks the first)
    follow_ups: list[int] = field(default_factory=lambda: [0])  # per question asked
    warned: bool = False

    def may_follow_up(self) -> bool:
        return self.follow_ups[-1] < self.plan.max_follow_ups

    def next_question(self) -> int | None:
        """The index of the next question, or None when every question was asked."""
        following = self.question + 1
        return following if following < len(self.plan.questions) else None

    def replied(self, question_index: int | None) -> None:
        """A reply asked ``question_index`` (a new question), or followed up (None, same)."""
        if question_index is not None and question_index != self.question:
            self.question = question_index
            self.follow_ups.append(0)
        else:
            self.follow_ups[-1] += 1

    def time_left_s(self, elapsed_s: float) -> float:
        return max(0.0, self.plan.max_duration_s - elapsed_s)

    def cue(self, elapsed_s: float) -> Cue:
        """What the clock asks for before the next reply; the warning is given once."""
        if elapsed_s >= self.plan.closing_at_s:
            return Cue.CLOSE
        if elapsed_s >= self.plan.warning_at_s and not self.warned:
            self.warned = True
            return Cue.WARN
        return Cue.NONE


def time_left_line(seconds: float) -> str:
    """The spoken warning: "We have about two minutes left." (whole minutes, in words)."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "We have less than a minute left."
    if minutes == 1:
        return "We have about one minute left."
    amount = NUMBERS[minutes] if minutes < len(NUMBERS) else str(minutes)
    return f"We have about {amount} minutes left."
