"""The pipeline's Prometheus metrics, on the registry of the process that runs the steps."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "pipeline_runs_total",
            "Pipeline runs that ended in this process, by final status",
            ["status"],
            registry=registry,
        )
        self.active = Gauge(
            "pipeline_runs_active", "Pipeline runs executing in this process", registry=registry
        )
        self.steps = Histogram(
            "pipeline_step_duration_seconds",
            "Duration of each pipeline step, by agent and outcome",
            ["agent", "status"],
            buckets=STEP_BUCKETS,
            registry=registry,
        )
