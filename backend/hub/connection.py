"""One client connection, whatever carries it: a bounded send queue and per-room cursors.

The hub puts work on the queue without waiting; only the connection's writer (run by
its transport's owner) sends, so a slow client never delays anyone else. A full queue
marks the connection for closing with 4008; the client resumes with ``last_seq``.

A connection is held for hours by thousands at once, so it is small: a plain list (the
writer takes everything ready at once, so nothing pops from its front one by one) and
one future that exists only while the writer waits, and slots. An ``asyncio.Queue`` and
an ``Event`` cost four deques, ~3 KiB, per idle connection.
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

BATCH = 256  # items the writer takes from the queue at once


class Transport(Protocol):
    """What carries a connection: a native WebSocket, or API Gateway's @connections."""

    kind: str

    async def send_text(self, text: str) -> None: ...

    async def send_texts(self, texts: list[str]) -> None:
        """Several messages, in order (one write where the transport can)."""
        ...

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


def _size(item: QueueItem) -> int:
    if isinstance(item, str):
        return len(item)
    return len(item.text) if isinstance(item, Published) else 0


class Connection:
    __slots__ = (
        "_items",
        "_max_bytes",
        "_max_messages",
        "_queued_bytes",
        "_waiter",
        "close_code",
        "close_reason",
        "cursors",
        "id",
        "principal",
        "transport",
    )

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
        self._items: list[QueueItem] = []
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._queued_bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self.close_code: int | None = None
        self.close_reason = ""

    @property
    def rooms(self) -> set[str]:
        return set(self.cursors)

    def offer(self, item: QueueItem) -> bool:
        """Queue without waiting; False (and the connection marked too slow) when full."""
        if self.close_code is not None:
            return False
        size = _size(item)
        if len(self._items) >= self._max_messages or self._queued_bytes + size > self._max_bytes:
            self.fail(CLOSE_TOO_SLOW, "too slow: resume with last_seq")
            return False
        self._queued_bytes += size
        self._items.append(item)
        self._wake()
        return True

    async def next_batch(self) -> list[QueueItem]:
        """What is queued, oldest first (at most BATCH); empty once the connection failed."""
        while not self._items and self.close_code is None:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.close_code is not None:
            return []
        if len(self._items) <= BATCH:
            batch, self._items = self._items, []
        else:
            batch = self._items[:BATCH]
            del self._items[:BATCH]
        self._queued_bytes -= sum(_size(item) for item in batch)
        return batch

    def fail(self, code: int, reason: str) -> None:
        """Mark for closing with ``code``: the writer stops and the owner closes."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self._items.clear()
            self._queued_bytes = 0
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
