"""uvicorn's WebSocket protocol (``websockets-sansio``), holding less per connection.

A status socket is held for hours, by tens of thousands at once, and uvicorn's protocol
object lives as long as it. Measured per idle connection (``bench/hub_memory.py``,
docs/benchmarks.md, "Idle memory in memory mode"), that object kept:

- an ``asyncio.Queue`` for what the client sends: four ``deque``s (its items, getters,
  putters and its ``Event``'s waiters), ~3.3 KiB, for a queue with one consumer (the
  app's ``receive``) that holds one message at a time (uvicorn stops reading until the
  app has taken it);
- an ``asyncio.Event`` for write flow control: one more ``deque``, ~0.8 KiB;
- the handshake's request and response with their headers, ~3.5 KiB, never read again
  once the response is written.

This subclass changes only those: a one-consumer inbox, a flag whose waiters exist only
while the transport is paused, and the handshake dropped once answered. Everything else
(framing, keep-alive pings, closing) is uvicorn's. The hub's tests run every WebSocket
through it: the service's protocol, :class:`backend.app.ws_protocol.FramesProtocol`,
is its subclass.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

if TYPE_CHECKING:
    from uvicorn._types import ASGIReceiveEvent


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn calls put_nowait, get and empty on its queue; set, clear and wait on
        # writable. These two answer the same calls.
        self.queue = cast("asyncio.Queue[ASGIReceiveEvent]", _Inbox())
        self.writable = cast(asyncio.Event, _Flag(is_set=True))

    def start_keepalive(self) -> None:
        # uvicorn calls this once, right after it wrote the handshake's response: the
        # request and the response are not read again. websockets' parser keeps the
        # request too (a local of its suspended generator), so its headers are emptied.
        request = self.__dict__.pop("request", None)
        if request is not None:
            request.headers.clear()
        self.__dict__.pop("response", None)
        super().start_keepalive()


class _Inbox:
    """What the client sent, for its one reader: a list, and a future while it waits."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class _Flag:
    """``asyncio.Event``'s set, clear and wait; the waiters' list exists only while some
    wait (a paused transport), not for the connection's life."""

    __slots__ = ("_set", "_waiters")

    def __init__(self, *, is_set: bool) -> None:
        self._set = is_set
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True
