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

Run the service with ``--ws backend.app.ws_protocol:FramesProtocol`` (:data:`WS_PROTOCOL`).
"""

from __future__ import annotations

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
        self.transport.write(encode(text))
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
