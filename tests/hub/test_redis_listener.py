"""The hub's Redis listener against a redis-server of the test's own: it comes back.

Before: after ``SHUTDOWN`` and a restart, the listener resubscribed, then its catch-up
read the history on a pooled connection the restart had killed; the read's
``BusUnavailable`` was not among the errors the loop retried, so the listener task
ended, silently (nobody awaited it), readiness stayed 503 and live events never came.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from backend.core.storage.redis_pool import open_pool
from backend.hub.bus import BusUnavailable, Published
from backend.hub.hub_metrics import HubMetrics
from backend.hub.redis_bus import RedisBus
from backend.hub.redis_listener import Listener, ListenerDown
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis


class Collect:
    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def on_event(self, event: Published) -> None:
        self.events.append((event.session_id, event.seq))

    def on_message(self, envelope: dict[str, Any]) -> None:
        pass


async def _until(check: Callable[[], Any], what: str, timeout_s: float = 10.0) -> float:
    started = time.monotonic()
    while True:
        try:
            if await check() if asyncio.iscoroutinefunction(check) else check():
                return time.monotonic() - started
        except BusUnavailable:
            pass
        assert time.monotonic() - started < timeout_s, f"never happened: {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def bus(private_redis: RedisServer) -> AsyncIterator[tuple[RedisBus, Collect]]:
    client = open_pool(private_redis.url, max_connections=16)
    bus = RedisBus(
        client, prefix="t:", history_size=100, ttl_s=600, metrics=HubMetrics(CollectorRegistry())
    )
    sink = Collect()
    await bus.start(sink)
    yield bus, sink
    await bus.close()
    await client.aclose()


async def _ready(bus: RedisBus) -> bool:
    await bus.ping()
    return True


async def test_listener_comes_back_after_a_restart_with_persistence(
    bus: tuple[RedisBus, Collect], private_redis: RedisServer
) -> None:
    hub_bus, sink = bus
    for room in ("s1", "s2"):
        await hub_bus.follow(room)
        await hub_bus.publish(room, {"agent": "a", "status": "running"})
    await _until(lambda: len(sink.events) == 2, "the first events")
    private_redis.shutdown()
    await asyncio.sleep(2)
    private_redis.start()
    took = await _until(lambda: _ready(hub_bus), "readiness")
    assert took < 5, f"readiness took {took:.1f}s after Redis answered"
    for room in ("s1", "s2"):
        await hub_bus.publish(room, {"agent": "a", "status": "running"})
    await _until(lambda: len(sink.events) == 4, "events after the restart")
    assert sorted(sink.events) == [("s1", 1), ("s1", 2), ("s2", 1), ("s2", 2)]


async def test_supervisor_replaces_a_listener_that_stopped_making_progress(
    private_redis: RedisServer,
) -> None:
    client = open_pool(private_redis.url, max_connections=8)
    metrics = HubMetrics(CollectorRegistry())
    seen: list[bytes] = []
    hang = asyncio.Event()

    async def on_message(data: Any) -> None:
        if not seen:
            seen.append(data)
            await hang.wait()  # a handler that never returns: the listener is stuck
        else:
            seen.append(data)

    async def caught_up() -> None:
        pass

    listener = Listener(
        client,
        channels=lambda: ["ch"],
        on_subscribed=caught_up,
        on_message=on_message,
        metrics=metrics,
        stall_s=2.0,
        dead_s=1.0,
    )
    task = asyncio.create_task(listener.supervise())
    try:
        await _until(lambda: listener.connected, "subscribed")
        await client.publish("ch", b"first")
        await _until(lambda: len(seen) == 1, "the first message")
        await asyncio.sleep(1.5)
        with pytest.raises(ListenerDown):  # readiness sees the stuck listener
            listener.check()
        await _until(lambda: metrics.listener_restarts._value.get() == 1, "a replacement")
        await _until(lambda: listener.connected, "subscribed again")
        await client.publish("ch", b"second")
        await _until(lambda: seen[-1] == b"second", "the next message")
        listener.check()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()


async def test_a_stalled_redis_is_noticed_and_survived(
    bus: tuple[RedisBus, Collect], private_redis: RedisServer
) -> None:
    """SIGSTOP: nothing closes, nothing answers. The listener's pings go unanswered, it
    reports itself down, and comes back when Redis does."""
    hub_bus, sink = bus
    await hub_bus.follow("s1")
    private_redis.pause()
    try:
        await asyncio.sleep(6.5)
        with pytest.raises(BusUnavailable):
            await hub_bus.ping()
    finally:
        private_redis.resume()
    took = await _until(lambda: _ready(hub_bus), "readiness")
    assert took < 5
    await hub_bus.publish("s1", {"agent": "a", "status": "running"})
    await _until(lambda: sink.events == [("s1", 1)], "the event")
