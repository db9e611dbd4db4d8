"""What one wake-up of a hub connection costs the garbage collector and the CPU.

    uv run python -m bench.hub_wakeups                      # 2,000 members, 40 rooms
    uv run python -m bench.hub_wakeups --rooms-per-tick 8   # burstier, like the listener

In one process and without sockets: the hub on the memory bus, S rooms of C members
whose transport sends like uvicorn's does when the socket has room (a coroutine per
message that never suspends). Each loop tick publishes to ``--rooms-per-tick`` rooms, so
that many rooms' members wake at once, as when the Redis listener reads several events
in one go. It prints the collections per 10,000 deliveries, by generation, and the CPU
per delivery: figures that the machine's load does not move, unlike latency.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry

from backend.core.auth import Principal, Role
from backend.core.storage.memory import MemoryStore
from backend.hub.hub import Hub
from backend.hub.hub_metrics import HubMetrics
from backend.hub.memory_bus import MemoryBus

_collections = [0, 0, 0]
EVENT = {"agent": "a", "status": "running", "ts": "2026-11-30T00:00:00Z"}


def _count(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _collections[info["generation"]] += 1


class _Transport:
    """Sends like uvicorn's WebSocket protocol when the socket has room."""

    kind = "websocket"
    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = 0

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent += len(message["text"].encode())

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def send_texts(self, texts: list[str]) -> None:
        for text in texts:
            await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str) -> None:
        return None


class _Anyone:
    async def check(self, principal: Principal, session_id: str) -> None:
        return None


async def run(args: argparse.Namespace) -> None:
    bus = MemoryBus()
    hub = Hub(bus, MemoryStore(), _Anyone(), HubMetrics(CollectorRegistry()))
    await hub.start()
    rooms = [f"room-{i}" for i in range(args.rooms)]
    for room in rooms:
        await bus.publish(room, EVENT)
    principal = Principal("bench", Role.SERVICE)
    conns = []
    for room in rooms:
        for _ in range(args.members):
            conn = hub.open(principal, _Transport())
            await hub.greet(conn, room)
            conns.append(conn)
    for _ in range(50):
        await asyncio.sleep(0)  # the snapshots go out
    gc.collect()
    gc.freeze()  # as HUB_GC_FREEZE does, with the connections open
    gc.callbacks.append(_count)
    started_cpu, published = time.process_time(), 0
    while published < args.events:
        for i in range(args.rooms_per_tick):
            room = rooms[(published + i) % len(rooms)]
            await bus.publish(room, EVENT)
        published += args.rooms_per_tick
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    for _ in range(10):
        await asyncio.sleep(0)
    cpu = time.process_time() - started_cpu
    gc.callbacks.remove(_count)
    deliveries = published * args.members
    per = 10_000 / deliveries
    print(
        f"{len(conns)} members in {args.rooms} rooms, {published} events "
        f"({args.rooms_per_tick} rooms per tick): {deliveries} deliveries"
    )
    print(
        "collections per 10,000 deliveries: "
        + ", ".join(f"gen {g} {n * per:.1f}" for g, n in enumerate(_collections))
    )
    print(f"CPU per delivery: {1e6 * cpu / deliveries:.2f} us")
    for conn in conns:
        await hub.disconnect(conn)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, default=40)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--rooms-per-tick", type=int, default=2)
    args = parser.parse_args(argv)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
