"""Baseline servers for bench/hub_fanout.py: the raw `websockets` ceiling and python-socketio.

    python -m bench.fanout_servers raw PORT
    python -m bench.fanout_servers socketio PORT REDIS_URL

Both speak the hub's event shape. Subscribers join a room per session; the publisher
sends ``{"publish": session, "event": {...}}`` on a WebSocket (raw) or emits
``publish`` (socket.io), and the server fans the event out to the room.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any


async def raw_server(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    rooms: dict[str, set[ServerConnection]] = {}
    seqs: dict[str, int] = {}

    async def handler(ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else "/"
        room = path.rsplit("/", 1)[-1]
        if path.startswith("/publish"):
            async for raw in ws:
                body = json.loads(raw)
                sid = body["publish"]
                seqs[sid] = seqs.get(sid, 0) + 1
                event = {
                    "type": "agent_status",
                    "session_id": sid,
                    "seq": seqs[sid],
                    **body["event"],
                }
                broadcast(rooms.get(sid, set()), json.dumps(event))
            return
        rooms.setdefault(room, set()).add(ws)
        await ws.send(json.dumps({"type": "snapshot", "session_id": room}))
        try:
            await ws.wait_closed()
        finally:
            rooms[room].discard(ws)

    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None, backlog=2048):
        await asyncio.Future()


def socketio_app(redis_url: str) -> Any:
    import socketio

    manager = socketio.AsyncRedisManager(redis_url)
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager, cors_allowed_origins=[])
    seqs: dict[str, int] = {}

    @sio.on("join")  # type: ignore[untyped-decorator]
    async def join(sid: str, room: str) -> None:
        await sio.enter_room(sid, room)
        await sio.emit("snapshot", {"type": "snapshot", "session_id": room}, to=sid)

    @sio.on("publish")  # type: ignore[untyped-decorator]
    async def publish(sid: str, body: dict[str, Any]) -> None:
        room = body["publish"]
        seqs[room] = seqs.get(room, 0) + 1
        event = {"type": "agent_status", "session_id": room, "seq": seqs[room], **body["event"]}
        await sio.emit("agent_status", event, room=room)

    return socketio.ASGIApp(sio)


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "raw":
        # On uvloop, as the hub and python-socketio run under uvicorn: asyncio's own loop
        # made the ceiling lower than the servers measured against it (round 6).
        import uvloop

        uvloop.run(raw_server(port))
    else:
        import uvicorn

        uvicorn.run(
            socketio_app(sys.argv[3]),
            host="127.0.0.1",
            port=port,
            ws="websockets-sansio",
            log_level="warning",
        )


if __name__ == "__main__":
    main()
