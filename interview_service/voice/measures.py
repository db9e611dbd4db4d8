"""Honest measurements of an interview, computed from its transcript (no invented scores)."""

from __future__ import annotations

import re
import statistics
from typing import Any

from interview_service.records import InterviewRecord

FILLERS = re.compile(r"\b(um+|uh+|erm|hmm+|like|you know|i mean|sort of|kind of|basically)\b")


def local_measurements(record: InterviewRecord) -> dict[str, Any]:
    candidate = [line for line in record.transcript if line.role == "candidate"]
    interviewer = [line for line in record.transcript if line.role == "interviewer"]
    spoken = sum(max(0.0, line.end - line.start) for line in candidate)
    asked = sum(max(0.0, line.end - line.start) for line in interviewer)
    words = [len(line.text.split()) for line in candidate]
    fillers = sum(len(FILLERS.findall(line.text.lower())) for line in candidate)
    latencies = [
        float(turn["voice_to_voice_s"])
        for turn in record.turn_metrics
        if isinstance(turn.get("voice_to_voice_s"), int | float)
    ]
    return {
        "candidate_talk_ratio": round(spoken / (spoken + asked), 3) if spoken + asked else None,
        "candidate_words_per_minute": round(sum(words) / (spoken / 60), 1) if spoken else None,
        "answer_word_counts": words,
        "filler_words": fillers,
        "interviewer_response_latency_s": (
            round(statistics.median(latencies), 3) if latencies else None
        ),
    }
