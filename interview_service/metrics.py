"""The interview service's Prometheus metrics: live calls, finished, refused, forwarded
and swept ones."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from backend.core.metrics import Metrics


class InterviewMetrics:
    def __init__(self, metrics: Metrics) -> None:
        registry = metrics.registry
        self.live = Gauge(
            "interview_calls_live", "Interviews held by this process", registry=registry
        )
        self.finished = Counter(
            "interview_calls_finished_total",
            "Interviews that reached a final state",
            ["status", "reason"],
            registry=registry,
        )
        self.refused = Counter(
            "interview_calls_refused_total",
            "Interviews refused because the process was at INTERVIEW_MAX_CONCURRENT",
            registry=registry,
        )
        self.forwarded = Counter(
            "interview_requests_forwarded_total",
            "Signaling requests forwarded to the process holding the call",
            ["outcome"],  # answered | unreachable
            registry=registry,
        )
        self.swept = Counter(
            "interview_calls_swept_total",
            "Interviews of a dead process marked failed by this one",
            registry=registry,
        )
