"""The service's uvicorn WebSocket protocol, fed bytes: no sockets, a client's own parser.

What a client reads must not depend on which path wrote it: the frames of a batch sent
with ``SEND_TEXTS`` are the bytes uvicorn writes for the same texts one ``websocket.send``
at a time, in order; nothing is written while the transport's buffer is full or after a
close frame; with permessage-deflate each connection compresses with its own context.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from backend.app.ws_frames import FrameCache, text_frame
from backend.app.ws_protocol import SEND_TEXTS, WRITE_CHUNK_BYTES, FramesProtocol

TEXTS = [
    '{"type":"agent_status","seq":1}',
    '{"type":"agent_status","seq":2,"message":"' + "é" * 200 + '"}',  # 16-bit length
    "",
    '{"type":"agent_status","seq":3,"data":"' + "x" * 70_000 + '"}',  # 64-bit length
]


class FakeTransport(asyncio.Transport):
    """Records each write; pauses its protocol past ``high`` buffered bytes if asked."""

    def __init__(self, high: int | None = None) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closing = False
        self.high = high
        self.buffered = 0
        self.protocol: WebSocketsSansIOProtocol | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))
        self.buffered += len(data)
        if self.high is not None and self.buffered > self.high and self.protocol is not None:
            self.protocol.pause_writing()

    def drain(self) -> None:
        self.buffered = 0
        if self.protocol is not None:
            self.protocol.resume_writing()

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        addresses = {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}
        return addresses.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Socket:
    """One accepted connection: the server protocol, its app's ``send``, a client parser."""

    def __init__(
        self,
        protocol_class: type[WebSocketsSansIOProtocol],
        *,
        deflate: bool = False,
        high: int | None = None,
    ) -> None:
        self.scope: dict[str, Any] = {}
        self.accepted = asyncio.Event()
        self.done = asyncio.Event()
        self.send: Any = None
        config = Config(
            app=self._app,
            ws=protocol_class,
            ws_per_message_deflate=deflate,
            lifespan="off",
            interface="asgi3",
            proxy_headers=False,
            log_config=None,
        )
        config.load()
        self.server = protocol_class(config=config, server_state=ServerState(), app_state={})
        self.transport = FakeTransport(high)
        self.transport.protocol = self.server
        extensions = [ClientPerMessageDeflateFactory()] if deflate else []
        self.client = ClientProtocol(parse_uri("ws://127.0.0.1:8000/ws"), extensions=extensions)
        self.handshake_writes = 0

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        self.send = send
        self.accepted.set()
        await self.done.wait()

    async def open(self) -> Socket:
        self.server.connection_made(self.transport)
        self.client.send_request(self.client.connect())
        self.server.data_received(b"".join(self.client.data_to_send()))
        await asyncio.wait_for(self.accepted.wait(), 5)
        self.handshake_writes = len(self.transport.writes)
        self.client.receive_data(b"".join(self.transport.writes))
        assert isinstance(self.client.events_received()[0], Response)
        return self

    @property
    def written(self) -> bytes:
        """Everything written after the handshake's response."""
        return b"".join(self.transport.writes[self.handshake_writes :])

    def received(self) -> list[Frame]:
        """What the client parses from everything written after the handshake."""
        self.client.receive_data(self.written)
        return [e for e in self.client.events_received() if isinstance(e, Frame)]

    def client_sends_close(self) -> None:
        self.client.send_close(1000)
        self.server.data_received(b"".join(self.client.data_to_send()))

    async def finish(self) -> None:
        self.done.set()
        await asyncio.sleep(0)


async def test_a_batch_is_the_bytes_uvicorn_writes_one_send_at_a_time_in_one_write() -> None:
    plain = await Socket(WebSocketsSansIOProtocol).open()
    for text in TEXTS:
        await plain.send({"type": "websocket.send", "text": text})
    fast = await Socket(FramesProtocol).open()
    assert SEND_TEXTS in fast.scope["extensions"]
    assert SEND_TEXTS not in plain.scope["extensions"]
    await fast.send({"type": SEND_TEXTS, "texts": TEXTS[:3]})
    await fast.send({"type": SEND_TEXTS, "texts": TEXTS[3:]})

    assert fast.written == plain.written
    assert [f.data.decode() for f in fast.received()] == TEXTS
    assert len(fast.transport.writes) - fast.handshake_writes == 2  # one per batch
    assert len(plain.transport.writes) - plain.handshake_writes == len(TEXTS)
    await plain.finish()
    await fast.finish()


async def test_every_connection_is_handed_the_same_frame_bytes() -> None:
    first = await Socket(FramesProtocol).open()
    second = await Socket(FramesProtocol).open()
    text = '{"type":"agent_status","seq":7}'
    await first.send({"type": SEND_TEXTS, "texts": [text]})
    await second.send({"type": SEND_TEXTS, "texts": [text]})
    assert first.transport.writes[-1] is second.transport.writes[-1]  # encoded once
    assert [f.data.decode() for f in second.received()] == [text]
    await first.finish()
    await second.finish()


async def test_nothing_is_written_while_the_transport_is_full() -> None:
    sock = await Socket(FramesProtocol, high=WRITE_CHUNK_BYTES).open()
    texts = [f'{{"seq":{i},"data":"{"y" * 4000}"}}' for i in range(50)]  # ~200 KB
    sending = asyncio.create_task(sock.send({"type": SEND_TEXTS, "texts": texts}))
    await asyncio.sleep(0.01)
    assert not sending.done(), "waits for the buffer to drain, as uvicorn's send does"
    first = len(sock.written)
    assert WRITE_CHUNK_BYTES < first <= WRITE_CHUNK_BYTES + len(text_frame(texts[0]))
    while not sending.done():
        sock.transport.drain()
        await asyncio.sleep(0)
    await sending
    assert [f.data.decode() for f in sock.received()] == texts, "all of it, in order"
    await sock.finish()


async def test_no_frame_after_the_clients_close_frame() -> None:
    sock = await Socket(FramesProtocol).open()
    sock.client_sends_close()  # uvicorn answers it and closes the transport
    with pytest.raises(ClientDisconnected):
        await sock.send({"type": SEND_TEXTS, "texts": TEXTS[:1]})
    frames = sock.received()
    assert [f.opcode for f in frames] == [Opcode.CLOSE], "the close reply, then nothing"
    await sock.finish()


async def test_no_frame_after_the_apps_close_frame() -> None:
    sock = await Socket(FramesProtocol).open()
    await sock.send({"type": "websocket.close", "code": 4008, "reason": "too slow"})
    with pytest.raises(RuntimeError):
        await sock.send({"type": SEND_TEXTS, "texts": TEXTS[:1]})
    frames = sock.received()
    assert [f.opcode for f in frames] == [Opcode.CLOSE]
    assert Close.parse(frames[0].data).code == 4008
    await sock.finish()


async def test_a_lost_connection_is_told_as_uvicorn_tells_it() -> None:
    sock = await Socket(FramesProtocol).open()
    sock.server.connection_lost(None)
    with pytest.raises(ClientDisconnected):
        await sock.send({"type": SEND_TEXTS, "texts": TEXTS[:1]})
    assert sock.written == b""


async def test_with_permessage_deflate_each_connection_compresses_its_own() -> None:
    sock = await Socket(FramesProtocol, deflate=True).open()
    assert sock.server.conn.extensions, "the client offered it and the server accepted"
    texts = [f'{{"seq":{i},"message":"{"the same words " * 40}"}}' for i in range(3)]
    await sock.send({"type": SEND_TEXTS, "texts": texts})
    assert len(sock.transport.writes) - sock.handshake_writes == 1
    assert text_frame(texts[0]) not in sock.written, "compressed, not the shared frame"
    assert [f.data.decode() for f in sock.received()] == texts
    await sock.finish()


def test_the_frame_cache_is_bounded() -> None:
    cache = FrameCache(max_entries=4)
    texts = [str(i) for i in range(10)]
    assert [cache.frame(t) for t in texts] == [text_frame(t) for t in texts]
    assert len(cache) <= 4


def _write_now(sock: Socket) -> Any:
    """The extension's synchronous write, as the app finds it in the scope."""
    return sock.scope["extensions"][SEND_TEXTS]["write_now"]


async def test_write_now_writes_the_shared_frame_in_order_with_batches() -> None:
    first = await Socket(FramesProtocol).open()
    second = await Socket(FramesProtocol).open()
    await first.send({"type": SEND_TEXTS, "texts": TEXTS[:2]})
    assert _write_now(first)(TEXTS[2]) is True
    assert _write_now(second)(TEXTS[2]) is True
    # the batch writes what write_now held before it: the order on the wire is the calls'
    await first.send({"type": SEND_TEXTS, "texts": TEXTS[3:]})
    await asyncio.sleep(0)  # the turn ends: second's held frame goes too
    assert first.transport.writes[-2] is second.transport.writes[-1]  # encoded once
    assert [f.data.decode() for f in first.received()] == TEXTS
    assert [f.data.decode() for f in second.received()] == TEXTS[2:3]
    await first.finish()
    await second.finish()


async def test_write_now_in_one_turn_is_one_write_when_the_turn_ends() -> None:
    sock = await Socket(FramesProtocol).open()
    before = len(sock.transport.writes)
    texts = [f'{{"seq":{i}}}' for i in range(5)]
    assert all(_write_now(sock)(text) for text in texts)
    assert len(sock.transport.writes) == before, "held until the loop's turn ends"
    await asyncio.sleep(0)
    assert len(sock.transport.writes) == before + 1, "then all of them in one write"
    assert [f.data.decode() for f in sock.received()] == texts
    # a frame alone is written as the shared bytes, not a copy
    assert _write_now(sock)(texts[0]) is True
    await asyncio.sleep(0)
    assert sock.transport.writes[-1] is FramesProtocol.frame_cache.frame(texts[0])
    await sock.finish()


async def test_held_frames_go_before_a_close_and_not_after_a_lost_connection() -> None:
    closing = await Socket(FramesProtocol).open()
    assert _write_now(closing)(TEXTS[0]) is True
    await closing.send({"type": "websocket.close", "code": 4008, "reason": "too slow"})
    frames = closing.received()
    assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.CLOSE]
    await closing.finish()

    lost = await Socket(FramesProtocol).open()
    assert _write_now(lost)(TEXTS[0]) is True
    lost.server.connection_lost(None)
    await asyncio.sleep(0)
    assert lost.written == b"", "dropped: the socket is gone"


async def test_write_now_refuses_while_the_transport_is_paused() -> None:
    sock = await Socket(FramesProtocol, high=WRITE_CHUNK_BYTES).open()
    big = f'{{"data":"{"z" * (WRITE_CHUNK_BYTES + 10)}"}}'
    # room before it: one frame past the mark, written at once (past WRITE_CHUNK_BYTES
    # held, nothing waits for the turn's end), so flow control sees it
    assert _write_now(sock)(big) is True
    written = len(sock.written)
    assert written > WRITE_CHUNK_BYTES
    assert _write_now(sock)(TEXTS[0]) is False, "paused: the caller queues it"
    assert len(sock.written) == written, "nothing written past the mark"
    sock.transport.drain()
    assert _write_now(sock)(TEXTS[0]) is True
    await asyncio.sleep(0)
    assert [f.data.decode() for f in sock.received()] == [big, TEXTS[0]]
    await sock.finish()


async def test_write_now_refuses_once_closing_or_gone() -> None:
    theirs = await Socket(FramesProtocol).open()
    theirs.client_sends_close()
    assert _write_now(theirs)(TEXTS[0]) is False
    assert [f.opcode for f in theirs.received()] == [Opcode.CLOSE]
    await theirs.finish()

    ours = await Socket(FramesProtocol).open()
    await ours.send({"type": "websocket.close", "code": 4008, "reason": "too slow"})
    assert _write_now(ours)(TEXTS[0]) is False
    assert [f.opcode for f in ours.received()] == [Opcode.CLOSE]
    await ours.finish()

    lost = await Socket(FramesProtocol).open()
    lost.server.connection_lost(None)
    assert _write_now(lost)(TEXTS[0]) is False
    assert lost.written == b""


async def test_write_now_with_permessage_deflate_uses_the_connections_context() -> None:
    sock = await Socket(FramesProtocol, deflate=True).open()
    texts = [f'{{"seq":{i},"message":"{"the same words " * 40}"}}' for i in range(3)]
    await sock.send({"type": SEND_TEXTS, "texts": texts[:1]})
    assert _write_now(sock)(texts[1]) is True
    await sock.send({"type": SEND_TEXTS, "texts": texts[2:]})
    assert text_frame(texts[1]) not in sock.written, "compressed, not the shared frame"
    assert [f.data.decode() for f in sock.received()] == texts
    await sock.finish()
