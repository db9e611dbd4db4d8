"""The hub's Prometheus metrics, on the app's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from backend.core.metrics import LATENCY_BUCKETS


class HubMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge(
            "hub_connections", "Open hub connections", ["transport"], registry=registry
        )
        self.rooms = Gauge("hub_rooms", "Rooms with a member on this process", registry=registry)
        self.published = Counter(
            "hub_events_published_total", "Events accepted for publishing", registry=registry
        )
        self.delivered = Counter(
            "hub_events_delivered_total", "Live events sent to connections", registry=registry
        )
        self.slow_closes = Counter(
            "hub_events_dropped_total",
            "Events dropped because a connection's send queue was full "
            "(the connection is closed with 4008)",
            registry=registry,
        )
        self.resumes = Counter(
            "hub_resumes_total",
            "Snapshots sent, by whether the gap was recovered from history",
            ["recovered"],
            registry=registry,
        )
        self.listener_reconnects = Counter(
            "hub_listener_reconnects_total", "Times the bus listener reconnected", registry=registry
        )
        self.listener_restarts = Counter(
            "hub_listener_restarts_total",
            "Times the supervisor replaced a bus listener that ended or stopped making progress",
            registry=registry,
        )
        self.listener_up = Gauge(
            "hub_listener_up", "1 while the bus listener is connected", registry=registry
        )
        self.lag = Histogram(
            "hub_publish_to_send_seconds",
            "From publish to the event being written to a connection",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
