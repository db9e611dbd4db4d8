"""The status hub as the fan-out's room feed: live events on this process, and history."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from backend.gateway.fanout import FeedEvent
from backend.hub.hub import Hub


class HubFeed:
    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    @contextlib.asynccontextmanager
    async def follow(self, room: str) -> AsyncIterator[AsyncIterator[FeedEvent]]:
        async with self._hub.watch(room) as queue:

            async def events() -> AsyncIterator[FeedEvent]:
                while True:
                    event = await queue.get()
                    if event.text:  # an empty one only marks lost history: cursors catch up
                        yield FeedEvent(event.seq, event.text)

            yield events()

    async def since(self, room: str, after_seq: int) -> list[FeedEvent]:
        history = await self._hub.bus.history(room, after_seq)
        return [FeedEvent(event.seq, event.text) for event in history.events]
