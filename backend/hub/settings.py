"""The status hub's settings (CONTRACT §2): history, TTLs and per-connection queues."""

from __future__ import annotations

from pydantic import Field

from backend.core.settings import CoreSettings


class HubSettings(CoreSettings):
    hub_history_size: int = Field(default=1000, ge=10, le=100_000)
    hub_session_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    hub_queue_messages: int = Field(default=1000, ge=10)
    hub_queue_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    # Once per process, when the first hub starts: everything alive then (modules, the
    # app, its pools) is moved out of the garbage collector's sight, so a full
    # collection walks the connections only (docs/benchmarks.md, garbage collection).
    hub_gc_freeze: bool = True
    # gc.set_threshold(gen0, gen1, gen2) when the hub starts; empty: Python's (700, 10, 10).
    hub_gc_thresholds: tuple[int, int, int] | None = None
    # While connections open at 100 a second or more (a reconnect storm), full
    # collections need 100 younger ones instead of 10; the thresholds are put back
    # 30 quiet seconds later (backend/hub/gc_bursts.py, docs/benchmarks.md round 4).
    hub_gc_bursts: bool = True
