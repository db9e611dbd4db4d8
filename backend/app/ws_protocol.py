"""The service's uvicorn WebSocket protocol: a batch of texts in one ``transport.write``.

ASGI carries one message per ``send``; for each, uvicorn's protocol frames the text with
websockets and writes it on its own, so a status event cost every member of its room an
ASGI send chain, the framing of the same text again, and one ``transport.write``
(docs/benchmarks.md, "One frame per event"). This subclass of uvicorn's sans-I/O
protocol (through :mod:`backend.app.lean_ws_protocol`, which holds less per idle
connection) advertises the ASGI server extension :data:`SEND_TEXTS` in
``scope["extensions"]`` and accepts one more message type,
``{"type": SEND_TEXTS, "texts": [...]}``: the texts, in order, as frames the process
encoded once (:class:`~backend.app.ws_frames.FrameCache`), written together.

Everything else stays uvicorn's: the handshake, close, ping and pong, the reads. Like
uvicorn's own ``send`` it waits while the transport's buffer is above its high-water
mark, and writes at most :data:`WRITE_CHUNK_BYTES` (or one frame) past it, so a client
that stops reading still fills the hub's queue and is closed with 4008. It refuses to
write once a close frame was sent or received. With permessage-deflate negotiated each
connection compresses with its own context: websockets frames the texts, still one
write per batch.

The extension's value carries one synchronous call, ``write_now(text) -> bool``: the
text's frame written at once when nothing stands in the way (the transport is not
paused, the socket is open and past the handshake, no close frame sent or received),
False otherwise. The hub writes a live event with it straight from its fan-out when the
connection's writer has nothing queued and nothing in flight (``Hub.on_event``), as
``websockets.broadcast`` does: no ASGI message, no task woken. A paused transport
refuses, so the event takes the queue and a client that stops reading is still closed
with 4008; a write adds at most one frame past the buffer's high-water mark, after
which asyncio pauses the protocol.

What ``write_now`` writes is held until the end of the event loop's turn, and everything a
connection was given in that turn goes in one ``transport.write`` (:class:`TurnWrites`).
At a few events a second nobody gets two in a turn and nothing changes but a list append;
when the fan-out falls behind, the listener works through many events in one turn, and a
member of a busy room then costs one syscall for all of them instead of one each (and its
client one read): the server gets cheaper per event exactly when it is short of time.
Every other write of the connection (a batch, a pong, a close) first writes what is held,
so the order on the wire is the order of the calls; past :data:`WRITE_CHUNK_BYTES` held,
it is written at once, so flow control and the 4008 bound see it.

Run the service with ``--ws backend.app.ws_protocol:FramesProtocol`` (:data:`WS_PROTOCOL`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from uvicorn.protocols.utils import ClientDisconnected
from websockets.http11 import Request
from websockets.protocol import State

from backend.app.lean_ws_protocol import LeanWebSocketProtocol
from backend.app.ws_frames import FrameCache

if TYPE_CHECKING:
    from uvicorn._types import ASGISendEvent

WS_PROTOCOL = "backend.app.ws_protocol:FramesProtocol"
SEND_TEXTS = "pipeline.websocket.send_texts"
# What one write adds at most past the buffer's high-water mark (asyncio's default mark).
WRITE_CHUNK_BYTES = 64 * 1024


class FramesProtocol(LeanWebSocketProtocol):
    # One per process, shared by every connection: that is the point (bounded).
    frame_cache = FrameCache()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = cast(asyncio.Transport, TurnWrites(self.transport, self.loop))

    def connection_lost(self, exc: Exception | None) -> None:
        cast(TurnWrites, self.transport).drop()
        super().connection_lost(exc)

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if not self.close_sent:  # upgraded; the app's task has not started yet
            self.scope["extensions"][SEND_TEXTS] = {"write_now": self.write_now}

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == SEND_TEXTS:
            await self._send_texts(cast(Mapping[str, Any], message)["texts"])
        else:
            await super().send(message)

    async def _send_texts(self, texts: Sequence[str]) -> None:
        start = 0
        while start < len(texts):
            await self.writable.wait()  # as uvicorn's send: flow control first
            self._check_open()
            data, start = self._chunk(texts, start)
            self.transport.write(data)

    def write_now(self, text: str) -> bool:
        """Write ``text``'s frame now if the socket takes a write at once; else False."""
        if (
            not self.writable.is_set()  # paused: the caller queues, flow control holds
            or self.disconnected
            or self.close_sent
            or not self.handshake_complete
            or self.initial_response is not None
            or self.conn.state is not State.OPEN
        ):
            return False
        encode = self._own_frame if self.conn.extensions else self.frame_cache.frame
        cast(TurnWrites, self.transport).hold(encode(text))
        return True

    def _check_open(self) -> None:
        """Raise as uvicorn's ``websocket.send`` would where it would not write."""
        if self.disconnected:
            raise ClientDisconnected()
        if not self.handshake_complete or self.initial_response is not None or self.close_sent:
            raise RuntimeError(f"'{SEND_TEXTS}' before 'websocket.accept' or after a close")
        if self.conn.state is not State.OPEN:  # the client's close frame came
            raise ClientDisconnected()

    def _chunk(self, texts: Sequence[str], start: int) -> tuple[bytes, int]:
        """The frames of ``texts[start:end]``, about WRITE_CHUNK_BYTES at most, and ``end``."""
        encode = self._own_frame if self.conn.extensions else self.frame_cache.frame
        frame = encode(texts[start])
        end = start + 1
        if end == len(texts) or len(frame) >= WRITE_CHUNK_BYTES:
            return frame, end  # the usual batch: one event's shared bytes, no copy
        parts = [frame]
        size = len(frame)
        while end < len(texts) and size < WRITE_CHUNK_BYTES:
            frame = encode(texts[end])
            parts.append(frame)
            size += len(frame)
            end += 1
        return b"".join(parts), end

    def _own_frame(self, text: str) -> bytes:
        """This connection's frame: compressed with its own deflate context, in order."""
        self.conn.send_text(text.encode())
        return b"".join(self.conn.data_to_send())


class TurnWrites:
    """The connection's transport, holding ``hold``'s frames until the loop's turn ends.

    ``write``, ``writelines`` and ``close`` write what is held first; ``abort`` and a
    lost connection drop it; anything else is the transport's. A frame held alone is
    written as it is (the bytes every member shares), more than one joined.
    """

    __slots__ = ("_held", "_held_bytes", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None
        self._held_bytes = 0

    def hold(self, frame: bytes) -> None:
        if self._held is None:
            self._held = [frame]
            _end_of_turn(self._loop).append(self)
        else:
            self._held.append(frame)
        self._held_bytes += len(frame)
        if self._held_bytes >= WRITE_CHUNK_BYTES:  # flow control sees it now
            self.release()

    def release(self) -> None:
        """Write what is held, in one write (nothing when the transport is closing)."""
        held, self._held = self._held, None
        self._held_bytes = 0
        if not held or self._transport.is_closing():
            return
        self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def drop(self) -> None:
        self._held = None
        self._held_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            self.release()
        self._transport.write(data)

    def writelines(self, data: Any) -> None:
        if self._held is not None:
            self.release()
        self._transport.writelines(data)

    def close(self) -> None:
        if self._held is not None:
            self.release()
        self._transport.close()

    def abort(self) -> None:
        self.drop()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._held_bytes

    # What uvicorn calls on every connection, passed on without __getattr__'s detour.
    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Turn(threading.local):
    """The connections holding frames in this thread's loop's current turn."""

    loop: asyncio.AbstractEventLoop | None = None
    held: list[TurnWrites] | None = None


_turn = _Turn()


def _end_of_turn(loop: asyncio.AbstractEventLoop) -> list[TurnWrites]:
    """This turn's list of holders; the first one of a turn schedules their release."""
    held = _turn.held
    if held is None or _turn.loop is not loop:  # none yet, or a loop that is gone
        held = _turn.held = []
        _turn.loop = loop
        loop.call_soon(_release_all, held)
    return held


def _release_all(held: list[TurnWrites]) -> None:
    if _turn.held is held:
        _turn.held = None
    for writes in held:
        # release lets go of the frames before it writes: a dead socket's error leaves
        # nothing held, and must not keep the rest waiting
        with contextlib.suppress(Exception):
            writes.release()
