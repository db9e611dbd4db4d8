"""Prometheus metrics: one registry per app, handed to each capability at start-up.

No module-level registry: tests build many apps in one process, and each must count
only its own traffic.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

__all__ = ["CONTENT_TYPE_LATEST", "LATENCY_BUCKETS", "Metrics"]


class Metrics:
    def __init__(self, version: str, environment: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        info = Gauge(
            "pipeline_build_info",
            "Build information",
            ["version", "environment"],
            registry=self.registry,
        )
        info.labels(version=version, environment=environment).set(1)
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.http_in_flight = Gauge(
            "http_requests_in_flight", "HTTP requests being served", registry=self.registry
        )
        self.asyncio_tasks = Gauge(
            "process_asyncio_tasks",
            "asyncio tasks alive in the service's event loop (a leak shows as growth)",
            registry=self.registry,
        )

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Count ``loop``'s tasks whenever the metrics are read (the lifespan calls this)."""
        self.asyncio_tasks.set_function(lambda: len(asyncio.all_tasks(loop)))

    def render(self) -> bytes:
        return generate_latest(self.registry)
