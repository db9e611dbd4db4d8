"""The interview state machine and transcript merging."""

from __future__ import annotations

import pytest

from backend.core.errors import Conflict
from interview_service.records import InterviewRecord, InterviewStatus, TranscriptLine


def _record() -> InterviewRecord:
    return InterviewRecord(
        id="i1",
        user_id="u",
        owner="alice",
        role=None,
        questions=["q1", "q2"],
        language="en",
        max_duration_s=600,
        created_at=100.0,
        expires_at=220.0,
    )


def test_the_happy_path_stamps_start_and_end() -> None:
    record = _record()
    record.move(InterviewStatus.CONNECTING, now=101)
    record.move(InterviewStatus.ACTIVE, now=102)
    record.move(InterviewStatus.ENDED, reason="ended_by_client", now=162.5)
    assert record.started_at == 102
    assert record.ended_at == 162.5
    assert record.duration_s() == 60.5
    assert record.end_reason == "ended_by_client"


@pytest.mark.parametrize(
    "final", [InterviewStatus.ENDED, InterviewStatus.FAILED, InterviewStatus.EXPIRED]
)
def test_final_states_never_change(final: InterviewStatus) -> None:
    record = _record()
    record.move(final, now=110)
    for other in InterviewStatus:
        if other is not final:
            with pytest.raises(Conflict):
                record.move(other)
    assert record.move(final) is False  # idempotent


def test_an_active_call_cannot_expire_or_go_back() -> None:
    record = _record()
    record.move(InterviewStatus.CONNECTING)
    record.move(InterviewStatus.ACTIVE)
    for bad in (InterviewStatus.EXPIRED, InterviewStatus.CREATED, InterviewStatus.CONNECTING):
        with pytest.raises(Conflict):
            record.move(bad)


def test_records_round_trip_through_json() -> None:
    record = _record()
    record.move(InterviewStatus.CONNECTING)
    record.add_line(TranscriptLine(role="interviewer", text="hi", start=1, end=2))
    again = InterviewRecord.from_json(record.to_json())
    assert again == record


def test_late_lines_merge_in_time_order() -> None:
    record = _record()
    for start in (5.0, 1.0, 3.0, 3.0):
        record.add_line(TranscriptLine(role="candidate", text=str(start), start=start, end=start))
    assert [line.start for line in record.transcript] == [1.0, 3.0, 3.0, 5.0]
    status = record.status_view()
    assert status["current_question"] is None
    record.current_question = 1
    assert record.status_view()["current_question"] == {"index": 1, "text": "q2"}
