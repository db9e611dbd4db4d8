"""One client connection, whatever carries it: a bounded send queue and per-room cursors.

The hub puts work on the queue without waiting; only the connection's writer sends what
is queued, and nothing waits on a client's socket but that writer, so a slow client never
delays anyone else. A full queue marks the connection for closing with
4008; the client resumes with ``last_seq``.

A connection is held for hours by thousands at once, and reached by every event of its
rooms, so it is small and its wake-ups allocate little: two plain lists that take turns
(the writer takes everything ready at once; its last batch, emptied, is the next
queue), slots, and one future that exists only while the writer waits. Most live
events do not wake it at all: while it is :attr:`Connection.idle` the hub writes them
straight to the transport (``Hub._write_now``, ``Transport.write_now``).

The writer is one task for the connection's life (started by ``start_writer``,
stopped by its owner). A writer started per wake-up instead left no task on an idle
connection, but a room's event then made one task (six tracked objects) per member at
once, and the young collections those bursts set off promoted them until full
collections came (``bench/hub_wakeups.py``, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from backend.core.auth import Principal
from backend.core.errors import Unavailable
from backend.hub.bus import Published

CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_TOO_SLOW = 4008
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_AGAIN = 1013  # a dependency is down: reconnect with backoff
CLOSE_INTERNAL = 1011  # the server failed this connection: resume with last_seq

BATCH = 256  # items the writer takes from the queue at once


class Transport(Protocol):
    """What carries a connection: a native WebSocket, or API Gateway's @connections."""

    kind: str

    async def send_text(self, text: str) -> None: ...

    async def send_texts(self, texts: list[str]) -> None:
        """Several messages, in order (one write where the transport can)."""
        ...

    def write_now(self, text: str) -> bool:
        """Write one message at once, without waiting, if the transport can take it now
        (not paused, open); False, having written nothing, otherwise."""
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
Writer = Callable[["Connection"], Coroutine[Any, Any, None]]
_NOTHING: list[QueueItem] = []  # what take() returns when there is nothing: never appended to


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
        "_spare",
        "_waiter",
        "_writer",
        "close_code",
        "close_reason",
        "cursors",
        "id",
        "on_fail",
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
        # The writer's last batch, emptied and reused as the queue at the next take: a
        # queued delivery allocates no list (each one left the young generation to walk).
        self._spare: list[QueueItem] = []
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._queued_bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        # Called once when the connection fails, so its owner stops reading at once.
        self.on_fail: Callable[[], None] | None = None

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

    def start_writer(self, write: Writer) -> None:
        """Run the connection's one writer: ``write(self)`` sends what ``take`` gives and
        awaits ``wait()`` when there is nothing, until the connection fails."""
        self._writer = asyncio.get_running_loop().create_task(write(self))

    @property
    def idle(self) -> bool:
        """The writer waits with nothing queued and nothing in flight (no send, snapshot or
        fill under way): a message written now by someone else cannot overtake one of its."""
        waiter = self._waiter
        return waiter is not None and not waiter.done() and not self._items

    def wait(self) -> asyncio.Future[None]:
        """For the writer: done when something is queued or the connection failed."""
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        return waiter

    def take(self) -> list[QueueItem]:
        """For the writer: what is queued, oldest first (at most BATCH); empty when there
        is nothing or the connection failed."""
        items = self._items
        if not items or self.close_code is not None:
            return _NOTHING
        if len(items) <= BATCH:
            # The writer is done with the batch before this one: the queue from now on.
            batch, self._items = items, self._spare
            self._spare = batch
            self._items.clear()
        else:
            batch = items[:BATCH]
            del items[:BATCH]
        self._queued_bytes -= sum(_size(item) for item in batch)
        return batch

    async def stop_writer(self) -> None:
        """Cancel and await the writer, if one runs (its owner's last word on it)."""
        writer = self._writer
        if writer is not None:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def fail(self, code: int, reason: str) -> None:
        """Mark for closing with ``code``: the writer stops and the owner closes."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self._items.clear()
            self._queued_bytes = 0
            self._wake()
            if self.on_fail is not None:
                self.on_fail()

    def fail_after(self, error: BaseException) -> None:
        """Close with a code the client can act on; the reason never carries backend text."""
        if isinstance(error, Unavailable):
            self.fail(CLOSE_TRY_AGAIN, "the event store is unavailable; resume with last_seq")
        else:
            self.fail(CLOSE_INTERNAL, "internal error; resume with last_seq")

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
