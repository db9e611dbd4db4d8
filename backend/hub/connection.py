"""One client connection, whatever carries it: a bounded send queue and per-room cursors.

The hub puts work on the queue without waiting; only the connection's writer (run by
its transport's owner) sends, so a slow client never delays anyone else. A full queue
marks the connection for closing with 4008; the client resumes with ``last_seq``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from backend.core.auth import Principal
from backend.hub.bus import Published

CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_TOO_SLOW = 4008
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403


class Transport(Protocol):
    """What carries a connection: a native WebSocket, or API Gateway's @connections."""

    kind: str

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass(slots=True)
class Cursor:
    epoch: str
    seq: int


@dataclass(frozen=True, slots=True)
class Sync:
    """Send the snapshot (and replay) of a room; queued so it stays in order with events."""

    room: str
    last_seq: int | None
    epoch: str | None
    request_id: Any


QueueItem = str | Published | Sync


class Connection:
    def __init__(
        self,
        connection_id: str,
        principal: Principal,
        transport: Transport,
        *,
        max_messages: int,
        max_bytes: int,
    ) -> None:
        self.id = connection_id
        self.principal = principal
        self.transport = transport
        self.cursors: dict[str, Cursor] = {}
        self._queue: asyncio.Queue[QueueItem] = asyncio.Queue()
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._queued_bytes = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self.closing = asyncio.Event()

    @property
    def rooms(self) -> set[str]:
        return set(self.cursors)

    def offer(self, item: QueueItem) -> bool:
        """Queue without waiting; False (and the connection marked too slow) when full."""
        if self.close_code is not None:
            return False
        size = (
            len(item)
            if isinstance(item, str)
            else (len(item.text) if isinstance(item, Published) else 0)
        )
        if self._queue.qsize() >= self._max_messages or self._queued_bytes + size > self._max_bytes:
            self.fail(CLOSE_TOO_SLOW, "too slow: resume with last_seq")
            return False
        self._queued_bytes += size
        self._queue.put_nowait(item)
        return True

    async def next_item(self) -> QueueItem:
        item = await self._queue.get()
        if isinstance(item, str):
            self._queued_bytes -= len(item)
        elif isinstance(item, Published):
            self._queued_bytes -= len(item.text)
        return item

    def fail(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self.closing.set()
