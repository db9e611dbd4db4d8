"""What a call's conversation reports, as typed events with one wire shape each.

The stages produce these; :mod:`interview_service.calls` applies them to the call's
record with a ``match`` and sends :meth:`to_wire` over the ``events`` data channel
(docs/interview.md lists the shapes; their ``type``s and fields are what the browser and
the TypeScript client read, so fields are only ever added).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from backend.core.clock import iso


@dataclass(frozen=True, slots=True)
class InterviewerChosen:
    name: str
    scripted: bool

    def to_wire(self) -> dict[str, Any]:
        return {"type": "interviewer", "name": self.name, "scripted": self.scripted}


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The candidate began to speak (VAD), before anything is transcribed."""

    at: float  # wall clock

    def to_wire(self) -> dict[str, Any]:
        return {"type": "speech_started", "ts": iso(self.at)}


@dataclass(frozen=True, slots=True)
class BargeIn:
    """The candidate really interrupted: the reply is cancelled, queued audio dropped."""

    dropped_ms: int
    heard: str  # the interviewer's line as far as the candidate heard it

    def to_wire(self) -> dict[str, Any]:
        return {"type": "barge_in", "dropped_ms": self.dropped_ms, "heard": self.heard}


@dataclass(frozen=True, slots=True)
class FalseInterruption:
    """Speech over the interviewer that was a backchannel or noise: its line resumes."""

    held_ms: int  # how long the interviewer's audio was held
    words: str  # what was said, if anything ("yeah")

    def to_wire(self) -> dict[str, Any]:
        return {"type": "resumed", "held_ms": self.held_ms, "words": self.words}


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """A line said, by either side; ``interrupted``: cut to what the candidate heard."""

    role: str
    text: str
    start: float  # wall clock
    end: float
    interrupted: bool = False
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "transcript",
            "item": {
                "id": self.id,
                "role": self.role,
                "text": self.text,
                "start": iso(self.start),  # ISO 8601 UTC, as in every REST answer
                "end": iso(self.end),
                "interrupted": self.interrupted,
                "final": True,
            },
        }


@dataclass(frozen=True, slots=True)
class QuestionAsked:
    index: int

    def to_wire(self) -> dict[str, Any]:
        return {"type": "question", "index": self.index}


@dataclass(frozen=True, slots=True)
class TurnMetrics:
    metrics: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {"type": "turn_metrics", "metrics": dict(self.metrics)}


@dataclass(frozen=True, slots=True)
class InterviewComplete:
    reason: str | None = None  # "time_up": the plan's maximum duration ended it

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"type": "interview_complete"}
        if self.reason is not None:
            wire["reason"] = self.reason
        return wire


@dataclass(frozen=True, slots=True)
class ProviderFailed:
    stage: str  # "stt" | "llm_or_tts"
    error: str  # the exception's type name: never its message (it may carry secrets)

    def to_wire(self) -> dict[str, Any]:
        return {"type": "error", "stage": self.stage, "message": self.error}


VoiceEvent = (
    InterviewerChosen
    | SpeechStarted
    | BargeIn
    | FalseInterruption
    | TranscriptLine
    | QuestionAsked
    | TurnMetrics
    | InterviewComplete
    | ProviderFailed
)
