"""A reconnect storm's greetings: the work a room's members share, and what each keeps.

Many members greeted at once follow their room once and write their membership records
together; each still gets its snapshot and its events, other processes still find their
rooms, and a store that fails still fails every greeting that needed it (1013 at the
edge). The collector's thresholds rise during a burst of connections and come back.
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from backend.core.auth import ANONYMOUS, Principal
from backend.core.storage.memory import MemoryStore
from backend.core.storage.store import StoreUnavailable
from backend.hub import gc_bursts
from backend.hub.events import new_event_fields
from backend.hub.gc_bursts import CollectorBursts
from backend.hub.hub import Hub
from backend.hub.hub_metrics import HubMetrics
from backend.hub.memory_bus import MemoryBus

MEMBERS = 40


class _Transport:
    kind = "test"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def send_texts(self, texts: list[str]) -> None:
        for text in texts:
            await self.send_text(text)

    def write_now(self, text: str) -> bool:
        self.sent.append(json.loads(text))
        return True

    async def close(self, code: int, reason: str) -> None:
        return None


class _Access:
    async def check(self, principal: Principal, session_id: str) -> None:
        return None


class _CountingBus(MemoryBus):
    """The in-memory bus, counting its follows; each takes a while, as over Redis."""

    def __init__(self) -> None:
        super().__init__()
        self.follows = 0

    async def follow(self, session_id: str) -> None:
        self.follows += 1
        await asyncio.sleep(0.01)
        await super().follow(session_id)


class _CountingStore(MemoryStore):
    def __init__(self, *, down: bool = False) -> None:
        super().__init__()
        self.writes = 0
        self.down = down

    async def update_sets(
        self, added: list[tuple[str, str]], deleted: list[str], *, ttl_s: float | None = None
    ) -> None:
        self.writes += 1
        await asyncio.sleep(0.001)
        if self.down:
            raise StoreUnavailable("the store is unavailable; retry shortly")
        await super().update_sets(added, deleted, ttl_s=ttl_s)


def _hub(bus: MemoryBus, store: MemoryStore) -> Hub:
    return Hub(bus, store, _Access(), HubMetrics(CollectorRegistry()))


async def _settled(transports: list[_Transport], count: int) -> None:
    async with asyncio.timeout(10):
        while any(len(t.sent) < count for t in transports):
            await asyncio.sleep(0.01)


async def test_members_greeted_at_once_follow_once_and_write_their_records_together() -> None:
    bus, store = _CountingBus(), _CountingStore()
    hub = _hub(bus, store)
    await hub.start()
    for _ in range(3):
        await hub.publish("room-1", new_event_fields("a", "running"))
    transports = [_Transport() for _ in range(MEMBERS)]
    conns = [hub.open(ANONYMOUS, t) for t in transports]
    await asyncio.gather(*(hub.greet(c, "room-1", last_seq=1) for c in conns))
    await _settled(transports, 4)  # connected, snapshot, events 2 and 3
    for transport in transports:
        kinds = [m["type"] for m in transport.sent]
        assert kinds == ["connected", "snapshot", "agent_status", "agent_status"]
        assert transport.sent[1]["recovered"] is True
        assert [m["seq"] for m in transport.sent[2:]] == [2, 3]
    assert bus.follows == 1
    assert store.writes < MEMBERS / 4, store.writes

    # Another process finds each connection's room in the store.
    elsewhere = _hub(MemoryBus(), store)
    assert await elsewhere.rooms_of(conns[0].id) == {"room-1"}
    await hub.publish("room-1", new_event_fields("a", "completed"))
    await _settled(transports, 5)
    assert all(t.sent[-1]["seq"] == 4 for t in transports)

    await asyncio.gather(*(hub.disconnect(c) for c in conns))
    assert await elsewhere.rooms_of(conns[-1].id) == set()
    await hub.close()


async def test_every_greeting_fails_when_the_store_does() -> None:
    store = _CountingStore(down=True)
    hub = _hub(MemoryBus(), store)
    await hub.start()
    conns = [hub.open(ANONYMOUS, _Transport()) for _ in range(10)]
    results = await asyncio.gather(
        *(hub.greet(c, "room-2", last_seq=0) for c in conns), return_exceptions=True
    )
    assert all(isinstance(r, StoreUnavailable) for r in results), results
    await hub.close()


async def test_a_burst_of_connections_raises_the_full_collection_threshold_until_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gc_bursts, "WINDOW_S", 0.05)
    monkeypatch.setattr(gc_bursts, "BURST_OPENS", 20)
    monkeypatch.setattr(gc_bursts, "QUIET_WINDOWS", 3)
    before = gc.get_threshold()
    bursts = CollectorBursts(before)
    try:
        for _ in range(19):
            bursts.opened()
        assert not bursts.in_burst
        assert gc.get_threshold() == before
        bursts.opened()
        assert bursts.in_burst
        assert gc.get_threshold() == (*before[:2], max(before[2], 100))
        for _ in range(3):  # connections still pour in: the burst goes on
            for _ in range(25):
                bursts.opened()
            await asyncio.sleep(0.05)
        assert bursts.in_burst
        async with asyncio.timeout(5):
            while bursts.in_burst:  # quiet windows end it
                await asyncio.sleep(0.02)
        assert gc.get_threshold() == before
        assert bursts.bursts == 1
    finally:
        bursts.close()
        gc.set_threshold(*before)


async def test_a_started_hub_expects_its_clients_back_at_once() -> None:
    before = gc.get_threshold()
    bursts = CollectorBursts(before)
    hub = Hub(
        MemoryBus(), MemoryStore(), _Access(), HubMetrics(CollectorRegistry()), gc_bursts=bursts
    )
    try:
        await hub.start()
        assert bursts.in_burst
        assert gc.get_threshold()[2] >= 100
        await hub.close()
        assert not bursts.in_burst
        assert gc.get_threshold() == before
    finally:
        bursts.close()
        gc.set_threshold(*before)
