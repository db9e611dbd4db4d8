"""A lean WebSocket client for the load generator: a few µs of Python per received frame.

The fan-out benchmark's subscriber processes read tens of thousands of frames a second;
through the `websockets` client (a task per connection, a frame object, a queue and a UTF-8
decode per message) they ran out of CPU before the servers they measure. Here one
``asyncio.Protocol`` per connection does the opening handshake (RFC 6455 §4.1: the key, the
101, the ``Sec-WebSocket-Accept`` check) and then hands the byte stream to
:class:`FrameParser`, a parser without I/O, which cuts whole messages out of it (server
frames are unmasked; fragmented messages are joined; control frames may come between the
fragments). Pings are answered with a masked pong and a close with a masked close, as a
client must. Messages stay ``bytes``: the reader finds what it needs in them.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import os
import struct
import time
from collections.abc import Callable
from hashlib import sha1
from typing import cast

from websockets.frames import apply_mask  # the library's C helper (a loop in Python else)

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# What a message handler gets: the connection, the message, when its bytes were read.
OnMessage = Callable[["WebSocketClient", bytes, float], None]


class ProtocolError(Exception):
    """The server broke RFC 6455 (a masked frame, a stray continuation, ...)."""


class FrameParser:
    """Messages and control frames out of a server's byte stream, whatever the reads' sizes.

    :meth:`feed` returns ``(opcode, payload)`` per whole message (``TEXT`` or ``BINARY``,
    fragments joined) or control frame (``CLOSE``, ``PING``, ``PONG``), in stream order.
    """

    __slots__ = ("_buffer", "_fragments", "_opcode")

    def __init__(self) -> None:
        self._buffer = b""
        self._fragments: list[bytes] = []
        self._opcode = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self._buffer + data if self._buffer else data
        out: list[tuple[int, bytes]] = []
        pos, size = 0, len(buf)
        while size - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            length, head = second & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = (buf[pos + 2] << 8) | buf[pos + 3], 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            end = pos + head + length
            if end > size:
                break
            if second & 0x80:
                raise ProtocolError("a server frame is never masked")
            if first & 0x70:
                raise ProtocolError("reserved bits set without an extension")
            payload = buf[pos + head : end]
            pos = end
            opcode = first & 0x0F
            if opcode >= CLOSE:
                if not first & 0x80 or length > 125:
                    raise ProtocolError("a control frame is whole and at most 125 bytes")
                out.append((opcode, payload))
            elif opcode == CONTINUATION:
                if not self._fragments:
                    raise ProtocolError("a continuation with no message begun")
                self._fragments.append(payload)
                if first & 0x80:
                    out.append((self._opcode, b"".join(self._fragments)))
                    self._fragments = []
            elif self._fragments:
                raise ProtocolError("a new message before the last one's final fragment")
            elif first & 0x80:
                out.append((opcode, payload))
            else:
                self._opcode, self._fragments = opcode, [payload]
        self._buffer = buf[pos:]
        return out


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final frame as a client sends it: masked with a fresh key."""
    key = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return head + key + apply_mask(payload, key)


class WebSocketClient(asyncio.Protocol):
    """One client connection. Messages wait for :meth:`recv` until :meth:`drain` hands
    them to a callback; after that each goes to it as it is parsed (no task, no queue)."""

    def __init__(self, host: str, path: str) -> None:
        self.on_message: OnMessage | None = None
        self.close_code: int | None = None  # set once the connection is gone
        self._key = base64.b64encode(os.urandom(16))
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self._key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self._head = b""  # the handshake's reply until its blank line
        self._parser: FrameParser | None = None
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._open = self._loop.create_future()
        self._closed = self._loop.create_future()
        self._messages: collections.deque[tuple[bytes, float]] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closing = False

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if self._parser is None:
            data = self._handshake(data)
            if self._parser is None or not data:
                return
        try:
            frames = self._parser.feed(data)
        except ProtocolError:
            self._fail(1002)
            return
        now = time.time()  # the arrival of every message in this read
        for opcode, payload in frames:
            if opcode in (TEXT, BINARY):
                if self.on_message is not None:
                    self.on_message(self, payload, now)
                else:
                    self._messages.append((payload, now))
                    self._wake()
            elif opcode == PING:
                self._write(client_frame(PONG, payload))
            elif opcode == CLOSE:
                self._on_close(payload)
                return

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_code is None:
            self.close_code = 1006  # closed without a close frame
        if not self._open.done():
            self._open.set_exception(ConnectionError("closed during the handshake"))
        if not self._closed.done():
            self._closed.set_result(None)
        self._wake()

    # -- the opening handshake ------------------------------------------------------------
    def _handshake(self, data: bytes) -> bytes:
        """Take the 101 reply off ``data``; what follows it is already frames."""
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            return b""
        head, rest = self._head[:end], self._head[end + 4 :]
        lines = head.split(b"\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(b":") for line in lines[1:])
        }
        accept = base64.b64encode(sha1(self._key + GUID).digest())  # noqa: S324 (RFC 6455)
        switched = lines[0].split(b" ", 2)[1:2] == [b"101"]
        if not switched or headers.get(b"sec-websocket-accept") != accept:
            self._open.set_exception(ConnectionError(f"handshake refused: {lines[0]!r}"))
            assert self._transport is not None
            self._transport.close()
            return b""
        self._head = b""
        self._parser = FrameParser()
        self._open.set_result(None)
        return rest

    # -- closing --------------------------------------------------------------------------
    def _on_close(self, payload: bytes) -> None:
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        self.close_code = code
        if not self._closing:  # the server began: echo its code
            self._closing = True
            self._write(client_frame(CLOSE, payload[:2]))
        assert self._transport is not None
        self._transport.close()  # either way the closing handshake is complete (after the
        # echo is written: close() flushes first)

    def _fail(self, code: int) -> None:
        self.close_code = code
        assert self._transport is not None
        self._transport.abort()

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- what the benchmark calls -------------------------------------------------------------
    async def opened(self) -> None:
        await self._open

    async def recv(self) -> bytes:
        """The next message (only while :attr:`on_message` is unset)."""
        while not self._messages:
            if self._closed.done():
                raise ConnectionError(f"closed with {self.close_code}")
            self._waiter = self._loop.create_future()
            await self._waiter
            self._waiter = None
        return self._messages.popleft()[0]

    def drain(self, on_message: OnMessage) -> None:
        """Hand every message to ``on_message`` from now on, those waiting first."""
        while self._messages:
            payload, arrived = self._messages.popleft()
            on_message(self, payload, arrived)
        self.on_message = on_message

    def send(self, text: str) -> None:
        self._write(client_frame(TEXT, text.encode()))

    async def close(self, code: int = 1000) -> None:
        """Begin the closing handshake and wait for the server's close frame (or for the
        connection to be gone); the TCP connection is closed then."""
        if not self._closing and not self._closed.done():
            self._closing = True
            self._write(client_frame(CLOSE, code.to_bytes(2, "big")))
        await self._closed

    async def wait_closed(self) -> None:
        await self._closed

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


async def connect(
    host: str, port: int, path: str, local_addr: tuple[str, int] | None = None
) -> WebSocketClient:
    """A WebSocket opened to ``ws://host:port/path`` (no extensions, no subprotocol)."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: WebSocketClient(f"{host}:{port}", path), host, port, local_addr=local_addr
    )
    try:
        await client.opened()
    except BaseException:
        client.abort()
        raise
    return client
