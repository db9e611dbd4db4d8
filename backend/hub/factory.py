"""Builds the hub for the lifespan: the bus chosen by REDIS_URL, the hub, the sessions."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from backend.core.health import HealthChecks
from backend.core.metrics import Metrics
from backend.core.storage import Store
from backend.hub.bus import EventBus
from backend.hub.gc_bursts import CollectorBursts
from backend.hub.hub import Hub
from backend.hub.hub_metrics import HubMetrics
from backend.hub.sessions import Sessions
from backend.hub.settings import HubSettings


def open_bus(settings: HubSettings, store: Store, metrics: HubMetrics) -> EventBus:
    if not settings.redis_url:
        from backend.hub.memory_bus import MemoryBus

        return MemoryBus(history_size=settings.hub_history_size)
    from backend.core.storage.redis_store import RedisStore
    from backend.hub.redis_bus import RedisBus

    assert isinstance(store, RedisStore)
    return RedisBus(
        store.client,
        prefix=settings.redis_prefix,
        history_size=settings.hub_history_size,
        ttl_s=settings.hub_session_ttl_s,
        metrics=metrics,
    )


_frozen = False


def freeze_startup_heap() -> None:
    """Move what is alive now out of the collector's sight, once per process.

    A full collection walks every tracked object: with 5,000 connections open it took
    0.6-0.8 s here, a pause of every socket, and the service's modules and app were
    ~185,000 of the ~1.1 million objects it walked. They live as long as the process, so
    walking them again finds nothing. Only the first start freezes: a process that builds
    apps again and again (tests) would otherwise keep each one's cycles for good.
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


@contextlib.asynccontextmanager
async def open_hub(
    settings: HubSettings, store: Store, metrics: Metrics, health: HealthChecks
) -> AsyncIterator[tuple[Hub, Sessions]]:
    hub_metrics = HubMetrics(metrics.registry)
    bus = open_bus(settings, store, hub_metrics)
    sessions = Sessions(
        store,
        auth_enabled=settings.auth_configured,
        history=bus.history,
        ttl_s=settings.hub_session_ttl_s,
    )
    if settings.hub_gc_thresholds is not None:
        gc.set_threshold(*settings.hub_gc_thresholds)
    bursts = CollectorBursts(gc.get_threshold()) if settings.hub_gc_bursts else None
    hub = Hub(
        bus,
        store,
        sessions,
        hub_metrics,
        queue_messages=settings.hub_queue_messages,
        queue_bytes=settings.hub_queue_bytes,
        gc_bursts=bursts,
    )
    await hub.start()
    if bus.name != "memory":
        health.register("hub_listener", bus.ping)
    if settings.hub_gc_freeze:
        freeze_startup_heap()
    try:
        yield hub, sessions
    finally:
        await hub.close()
