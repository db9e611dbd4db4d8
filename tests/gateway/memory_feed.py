"""A room feed for fan-out tests: what the status hub's bus and history will provide.

Shared by the "processes" of a test (each a Fanout with its own sender and lease
owner) the way the Redis bus is shared by the processes of a fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator

from backend.gateway.fanout import FeedEvent


class MemoryFeed:
    def __init__(self) -> None:
        self._history: dict[str, list[FeedEvent]] = defaultdict(list)
        self._followers: dict[str, list[asyncio.Queue[FeedEvent]]] = defaultdict(list)

    def publish(self, room: str, agent: str = "writer") -> FeedEvent:
        seq = len(self._history[room]) + 1
        text = json.dumps(
            {
                "type": "agent_status",
                "session_id": room,
                "seq": seq,
                "agent": agent,
                "status": "running",
            }
        )
        event = FeedEvent(seq, text)
        self._history[room].append(event)
        for queue in self._followers[room]:
            queue.put_nowait(event)
        return event

    @contextlib.asynccontextmanager
    async def follow(self, room: str) -> AsyncIterator[AsyncIterator[FeedEvent]]:
        queue: asyncio.Queue[FeedEvent] = asyncio.Queue()
        self._followers[room].append(queue)

        async def events() -> AsyncIterator[FeedEvent]:
            while True:
                yield await queue.get()

        try:
            yield events()
        finally:
            self._followers[room].remove(queue)

    async def since(self, room: str, after_seq: int) -> list[FeedEvent]:
        return [event for event in self._history[room] if event.seq > after_seq]
