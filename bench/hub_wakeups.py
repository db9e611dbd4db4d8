"""What one wake-up of a hub connection costs the garbage collector and the CPU.

    uv run python -m bench.hub_wakeups                      # 2,000 members, 40 rooms
    uv run python -m bench.hub_wakeups --rooms-per-tick 8   # burstier, like the listener
    uv run python -m bench.hub_wakeups --transport frames   # through the service's protocol

In one process and without sockets: the hub on the memory bus, S rooms of C members
whose transport sends like uvicorn's does when the socket has room (a coroutine per
message that never suspends). Each loop tick publishes to ``--rooms-per-tick`` rooms, so
that many rooms' members wake at once, as when the Redis listener reads several events
in one go. It prints the collections per 10,000 deliveries, by generation, and the CPU
per delivery: figures that the machine's load does not move, unlike latency.

``--transport uvicorn`` and ``--transport frames`` send through a real uvicorn protocol
per member (uvicorn's sans-I/O one, one ``websocket.send`` per text as before, or the
service's ``ws_protocol.FramesProtocol``), handshake included, into a transport that
only counts the bytes: the ASGI send chain, the framing and the write's Python side,
without the socket's system call.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from backend.app.routers.ws import websocket_transport
from backend.app.ws_protocol import WS_PROTOCOL
from backend.core.auth import Principal, Role
from backend.core.storage.memory import MemoryStore
from backend.hub.connection import Transport
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

    def write_now(self, text: str) -> bool:
        return False  # every delivery through the writer: the queue path's cost

    async def close(self, code: int, reason: str) -> None:
        return None


class _Sink(asyncio.Transport):
    """A socket with room for everything: counts what uvicorn's protocol writes."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0
        self.writes = 0

    def write(self, data: Any) -> None:
        self.bytes += len(data)
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        return None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name)


class _Sockets:
    """Each member's transport: the bench's stand-in, or a real uvicorn protocol."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.fakes: list[_Transport] = []
        self.sinks: list[_Sink] = []
        self.apps: list[asyncio.Future[None]] = []
        self.protocol: Any = None
        if kind != "fake":
            self.config = uvicorn.Config(
                app=self._app,
                ws=WS_PROTOCOL if kind == "frames" else "websockets-sansio",
                ws_per_message_deflate=False,
                ws_ping_interval=None,
                interface="asgi3",
                lifespan="off",
                proxy_headers=False,
                log_config=None,
            )
            self.config.load()
            self.state = ServerState()
        self._accepted: asyncio.Future[Transport] | None = None

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert self._accepted is not None
        self._accepted.set_result(websocket_transport(scope, send))
        done = asyncio.get_running_loop().create_future()
        self.apps.append(done)
        await done  # a connection's app lives as long as it does

    async def transport(self) -> Transport:
        if self.kind == "fake":
            self.fakes.append(_Transport())
            return self.fakes[-1]
        protocol_class = self.config.ws_protocol_class
        assert protocol_class is not None
        protocol: Any = protocol_class(config=self.config, server_state=self.state, app_state={})  # type: ignore[call-arg]
        sink = _Sink()
        self.sinks.append(sink)
        protocol.connection_made(sink)
        client = ClientProtocol(parse_uri("ws://127.0.0.1:8000/ws"))
        client.send_request(client.connect())
        self._accepted = asyncio.get_running_loop().create_future()
        protocol.data_received(b"".join(client.data_to_send()))
        return await self._accepted

    def written(self) -> int:
        return sum(s.bytes for s in self.sinks) or sum(f.sent for f in self.fakes)

    def writes(self) -> int | str:
        return sum(s.writes for s in self.sinks) if self.sinks else "-"

    async def close(self) -> None:
        for done in self.apps:
            done.set_result(None)
        await asyncio.sleep(0)


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
    sockets = _Sockets(args.transport)
    for room in rooms:
        for _ in range(args.members):
            conn = hub.open(principal, await sockets.transport())
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
    print(f"bytes written: {sockets.written()}; writes: {sockets.writes()}")
    for conn in conns:
        await hub.disconnect(conn)
    await sockets.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, default=40)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--rooms-per-tick", type=int, default=2)
    parser.add_argument(
        "--transport",
        choices=["fake", "uvicorn", "frames"],
        default="fake",
        help="the bench's stand-in, uvicorn's sans-I/O protocol, or the service's",
    )
    args = parser.parse_args(argv)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
