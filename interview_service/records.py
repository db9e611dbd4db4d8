"""Interview records: the state machine and their home in the store.

A record outlives its call (results are read after the end) and lives under
``interview:{id}`` for ``INTERVIEW_RETENTION_DAYS`` after its last change. Only the
process that holds the call changes a live record, so writes are plain puts.

Times are Unix seconds inside (floats in the stored JSON) and ISO 8601 UTC strings in
every view an API answers with. Loading is lenient, so a rolling deploy can read records
written by the release before or after it: unknown fields are ignored, missing ones take
their defaults, and a time may be either a number or an ISO string.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from backend.core.clock import iso, iso_or_none, to_seconds
from backend.core.errors import Conflict, NotFound
from backend.core.storage import Store
from interview_service.plan import InterviewPlan


class InterviewStatus(StrEnum):
    CREATED = "created"
    CONNECTING = "connecting"
    ACTIVE = "active"
    ENDED = "ended"
    FAILED = "failed"
    EXPIRED = "expired"


FINAL = frozenset({InterviewStatus.ENDED, InterviewStatus.FAILED, InterviewStatus.EXPIRED})

# Which states each state may move to. A final state moves nowhere.
TRANSITIONS: dict[InterviewStatus, frozenset[InterviewStatus]] = {
    InterviewStatus.CREATED: frozenset(
        {
            InterviewStatus.CONNECTING,
            InterviewStatus.ENDED,
            InterviewStatus.FAILED,
            InterviewStatus.EXPIRED,
        }
    ),
    InterviewStatus.CONNECTING: frozenset(
        {
            InterviewStatus.ACTIVE,
            InterviewStatus.ENDED,
            InterviewStatus.FAILED,
            InterviewStatus.EXPIRED,
        }
    ),
    InterviewStatus.ACTIVE: frozenset({InterviewStatus.ENDED, InterviewStatus.FAILED}),
    InterviewStatus.ENDED: frozenset(),
    InterviewStatus.FAILED: frozenset(),
    InterviewStatus.EXPIRED: frozenset(),
}


@dataclass(slots=True)
class TranscriptLine:
    role: str  # "candidate" | "interviewer"
    text: str
    start: float
    end: float
    id: str = ""
    interrupted: bool = False
    final: bool = True
    source: str = "server"  # "server" (recognised/spoken) or "client" (POST /transcript)

    def view(self) -> dict[str, Any]:
        """The line as the API answers it: times as ISO 8601 UTC."""
        return {
            "role": self.role,
            "text": self.text,
            "start": iso(self.start),
            "end": iso(self.end),
            "interrupted": self.interrupted,
        }


@dataclass(slots=True)
class InterviewRecord:
    id: str
    user_id: str
    owner: str  # the principal's sub that started it
    role: str | None
    questions: list[str]
    language: str
    max_duration_s: float
    created_at: float
    expires_at: float  # nobody connected by then: expired
    status: InterviewStatus = InterviewStatus.CREATED
    connection_state: str = "new"
    ice_connection_state: str = "new"
    started_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    turns: int = 0
    current_question: int | None = None
    transcript: list[TranscriptLine] = field(default_factory=list)
    media: dict[str, int] = field(default_factory=dict)
    turn_metrics: list[dict[str, Any]] = field(default_factory=list)
    interviewer: dict[str, Any] = field(default_factory=dict)
    # Rubric results, written after the call by a language model (never by the local stack)
    evaluation: str = "none"  # none | pending | ready | failed
    summary: str | None = None
    scores: Any = None
    # Consent and delivery, asked for at /start
    record_audio: bool = False
    webhook_url: str | None = None
    # The stored recording: {"key", "content_type", "bytes", "duration_s"}, or
    # {"error": ...} when it could not be kept
    recording: dict[str, Any] | None = None
    # The plan (interview_service/plan.py): where the questions came from, the follow-up
    # cap per question, and the rubric the evaluation scores against
    job_description: str | None = None
    questions_source: str = "given"  # given | drafted | default
    max_follow_ups: int = 1
    rubric: list[dict[str, Any]] = field(default_factory=list)
    unscored: list[dict[str, str]] = field(default_factory=list)  # criteria without evidence
    evaluation_notes: list[str] = field(default_factory=list)  # quotes that were dropped

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def move(
        self, to: InterviewStatus, *, reason: str | None = None, now: float | None = None
    ) -> bool:
        """Apply one transition; False when already there, Conflict when not allowed."""
        if to is self.status:
            return False
        if to not in TRANSITIONS[self.status]:
            raise Conflict(
                f"interview is {self.status.value}; it cannot become {to.value}",
                code="invalid_state",
            )
        now = time.time() if now is None else now
        self.status = to
        if to is InterviewStatus.ACTIVE:
            self.started_at = now
        if to in FINAL:
            self.ended_at = now
            self.end_reason = reason or to.value
            # the peer connection is gone with the call: never "connected" after the end
            self.connection_state = self.ice_connection_state = "closed"
        return True

    def duration_s(self, now: float | None = None) -> float:
        if self.started_at is None:
            return 0.0
        end = self.ended_at if self.ended_at is not None else (time.time() if now is None else now)
        return round(max(0.0, end - self.started_at), 3)

    def add_line(self, line: TranscriptLine) -> None:
        """Merge one line in time order (client lines may arrive late)."""
        index = len(self.transcript)
        while index and self.transcript[index - 1].start > line.start:
            index -= 1
        self.transcript.insert(index, line)

    def plan(self) -> InterviewPlan:
        """What the interviewer is given: the questions, their follow-ups, the time."""
        return InterviewPlan(
            self.id,
            self.user_id,
            self.role,
            tuple(self.questions),
            self.language,
            self.max_duration_s,
            job_description=self.job_description,
            max_follow_ups=self.max_follow_ups,
        )

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> InterviewRecord:
        data: dict[str, Any] = _known(cls, json.loads(raw))
        data["status"] = InterviewStatus(data["status"])
        for name in ("created_at", "expires_at", "started_at", "ended_at"):
            if data.get(name) is not None:
                data[name] = to_seconds(data[name])
        lines = []
        for line in data.get("transcript", []):
            line = _known(TranscriptLine, line)
            line["start"], line["end"] = to_seconds(line["start"]), to_seconds(line["end"])
            lines.append(TranscriptLine(**line))
        data["transcript"] = lines
        return cls(**data)

    def status_view(self) -> dict[str, Any]:
        current = self.current_question
        return {
            "session_id": self.id,
            "status": self.status.value,
            # a record stored before the end closed its state reads closed all the same
            "connection_state": "closed" if self.final else self.connection_state,
            "ice_connection_state": "closed" if self.final else self.ice_connection_state,
            "created_at": iso(self.created_at),
            "started_at": iso_or_none(self.started_at),
            "ended_at": iso_or_none(self.ended_at),
            "duration_s": self.duration_s(),
            "turns": self.turns,
            "current_question": (
                None
                if current is None or current >= len(self.questions)
                else {"index": current, "text": self.questions[current]}
            ),
            "end_reason": self.end_reason,
            "media": dict(self.media),
        }


def _known(kind: type, data: dict[str, Any]) -> dict[str, Any]:
    """The fields ``kind`` has; others (from a newer release) are left out."""
    names = {f.name for f in fields(kind)}
    return {key: value for key, value in data.items() if key in names}


class InterviewRecords:
    """Interview records in the shared store (memory or Redis)."""

    def __init__(self, store: Store, *, ttl_s: float) -> None:
        self._store = store
        self._ttl_s = ttl_s  # INTERVIEW_RETENTION_DAYS, from the last change
        # Deleted here lately: a late save (scoring that finished after DELETE) is dropped
        # instead of bringing the record back.
        self._deleted: deque[str] = deque(maxlen=1024)

    @staticmethod
    def _key(interview_id: str) -> str:
        return f"interview:{interview_id}"

    async def create(self, record: InterviewRecord) -> None:
        if not await self._store.put_if_absent(
            self._key(record.id), record.to_json(), ttl_s=self._ttl_s
        ):
            raise Conflict("interview id already taken", code="interview_exists")

    async def save(self, record: InterviewRecord) -> None:
        if record.id in self._deleted:
            return
        await self._store.put(self._key(record.id), record.to_json(), ttl_s=self._ttl_s)

    async def delete(self, interview_id: str) -> bool:
        """Remove a record for good: later saves of it from this process are dropped."""
        self._deleted.append(interview_id)
        return await self._store.delete(self._key(interview_id))

    async def load(self, interview_id: str) -> InterviewRecord:
        raw = await self._store.get(self._key(interview_id))
        if raw is None:
            raise NotFound(f"no interview {interview_id!r}", code="interview_not_found")
        return InterviewRecord.from_json(raw)
