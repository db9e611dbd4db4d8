"""What ``GET /results`` shows of an interview's record (the webhook sends the same)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from interview_service.records import InterviewRecord
from interview_service.scoring import rubric_from
from interview_service.voice.measures import local_measurements


def results_view(record: InterviewRecord) -> dict[str, Any]:
    return {
        "session_id": record.id,
        "status": record.status.value,
        "transcript": [line.view() for line in record.transcript],
        # Only a language model scores, with quotes as evidence; the local stack
        # reports measurements and invents no scores.
        "summary": record.summary,
        "scores": record.scores,
        "unscored": record.unscored,  # criteria no quote of the candidate supported
        "evaluation": record.evaluation,
        "evaluation_notes": record.evaluation_notes,
        "plan": {
            "role": record.role,
            "questions": record.questions,
            "questions_source": record.questions_source,
            "max_follow_ups": record.max_follow_ups,
            "max_duration_s": record.max_duration_s,
            "rubric": [asdict(c) for c in rubric_from(record.rubric)],
        },
        "interviewer": record.interviewer,
        "metrics": {
            "duration_s": record.duration_s(),
            "turns": record.turns,
            "end_reason": record.end_reason,
            **record.media,
            **local_measurements(record),
            "per_turn": record.turn_metrics,
        },
    }
