"""The load generator's WebSocket reader decodes what `websockets` decodes, however the
bytes are split, and its subscribers count each server's events."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN, Protocol, Side

from backend.hub.events import wire_event
from backend.hub.protocol import dumps
from bench import fanout_subscriber, ws_reader
from bench.ws_reader import FrameParser, ProtocolError

OP_CONT, OP_TEXT, OP_BINARY = Opcode.CONT, Opcode.TEXT, Opcode.BINARY
OP_CLOSE, OP_PING, OP_PONG = Opcode.CLOSE, Opcode.PING, Opcode.PONG


def _frame(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=False, extensions=[])


# A server's stream: small, 16-bit and 64-bit lengths, binary, a text message in three
# fragments with a ping between them, a pong, a close.
STREAM = [
    _frame(OP_TEXT, b'{"type":"connected"}'),
    _frame(OP_TEXT, "é".encode() * 100),
    _frame(OP_BINARY, bytes(range(256)) * 300),
    _frame(OP_TEXT, b'{"a":', fin=False),
    _frame(OP_PING, b"keep"),
    _frame(OP_CONT, b'"b', fin=False),
    _frame(OP_CONT, b'c"}'),
    _frame(OP_PONG, b""),
    _frame(OP_TEXT, b""),
    _frame(OP_CLOSE, (4008).to_bytes(2, "big") + b"too slow"),
]


def _websockets_decodes(data: bytes) -> list[tuple[int, bytes]]:
    """What the `websockets` client decodes from ``data``: whole messages (its frames
    joined as its own assembler does) and control frames."""
    protocol = Protocol(Side.CLIENT, state=OPEN, max_size=None)
    protocol.receive_data(data)
    out: list[tuple[int, bytes]] = []
    parts: list[bytes] = []
    opcode = 0
    for frame in protocol.events_received():
        assert isinstance(frame, Frame)
        if frame.opcode in (OP_CLOSE, OP_PING, OP_PONG):
            out.append((frame.opcode.value, bytes(frame.data)))
            continue
        if frame.opcode != OP_CONT:
            opcode = frame.opcode.value
        parts.append(bytes(frame.data))
        if frame.fin:
            out.append((opcode, b"".join(parts)))
            parts = []
    return out


def _chunks(data: bytes, split: str) -> list[bytes]:
    if split == "whole":
        return [data]
    if split == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(split)
    out, pos = [], 0
    while pos < len(data):
        step = rng.randint(1, 40) if rng.random() < 0.7 else rng.randint(1, 9000)
        out.append(data[pos : pos + step])
        pos += step
    return out


@pytest.mark.parametrize("split", ["whole", "bytes", "random-1", "random-2", "random-3"])
def test_parser_decodes_what_websockets_decodes_however_the_stream_is_split(split: str) -> None:
    data = b"".join(STREAM)
    parser = FrameParser()
    got = [message for chunk in _chunks(data, split) for message in parser.feed(chunk)]
    expected = _websockets_decodes(data)
    assert got == expected
    assert [opcode for opcode, _ in got] == [
        ws_reader.TEXT,
        ws_reader.TEXT,
        ws_reader.BINARY,
        ws_reader.PING,
        ws_reader.TEXT,
        ws_reader.PONG,
        ws_reader.TEXT,
        ws_reader.CLOSE,
    ]
    assert got[4] == (ws_reader.TEXT, b'{"a":"bc"}')  # the ping between its fragments


@pytest.mark.parametrize(
    "data",
    [
        Frame(OP_TEXT, b"masked").serialize(mask=True, extensions=[]),
        _frame(OP_CONT, b"no message begun"),
        _frame(OP_TEXT, b"a", fin=False) + _frame(OP_TEXT, b"b"),
        bytes([0x80 | 0x40 | OP_TEXT.value, 1]) + b"x",  # RSV1 with no extension
        bytes([OP_PING.value, 0]),  # a fragmented control frame
    ],
    ids=["masked", "stray-continuation", "interleaved-message", "rsv1", "fragmented-ping"],
)
def test_parser_refuses_what_websockets_refuses(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        FrameParser().feed(data)
    protocol = Protocol(Side.CLIENT, state=OPEN)
    protocol.receive_data(data)
    assert protocol.close_expected() or protocol.parser_exc is not None


Handler = Callable[[ServerConnection], Awaitable[None]]


@pytest.fixture
async def server() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    """A `websockets` server on loopback running the handler the test gives it: its port."""
    servers = []

    async def start(handler: Handler) -> int:
        srv = await serve(handler, "127.0.0.1", 0, compression=None)
        servers.append(srv)
        port: int = srv.sockets[0].getsockname()[1]
        return port

    yield start
    for srv in servers:
        srv.close()
        await srv.wait_closed()


async def test_client_answers_pings_joins_fragments_and_echoes_the_servers_close(
    server: Callable[[Handler], Awaitable[int]],
) -> None:
    seen: dict[str, object] = {}
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(["{", '"x":', "1}"])  # one message in three fragments
        pong = await ws.ping(b"are you there")
        await pong  # the client's masked pong came back with the same data
        seen["pong"] = True
        seen["echo"] = await ws.recv()
        await ws.close(4008, "too slow")
        seen["close"] = ws.close_code  # the code the client echoed
        done.set()

    port = await server(handler)
    client = await ws_reader.connect("127.0.0.1", port, "/")
    assert await client.recv() == b'{"x":1}'
    client.send("héllo")
    await client.wait_closed()  # the server closes: the client echoes its code
    assert client.close_code == 4008
    await done.wait()
    assert seen == {"pong": True, "echo": "héllo", "close": 4008}


async def test_client_close_is_seen_by_the_server_as_a_normal_close(
    server: Callable[[Handler], Awaitable[int]],
) -> None:
    closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        closed.set_result(ws.close_code)

    port = await server(handler)
    client = await ws_reader.connect("127.0.0.1", port, "/")
    await client.close()
    assert await closed == 1000
    assert client.close_code == 1000


async def test_handshake_with_a_wrong_accept_key_is_refused() -> None:
    async def not_websocket(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n"
        )
        await writer.drain()
        await reader.read()
        writer.close()

    srv = await asyncio.start_server(not_websocket, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectionError, match="handshake refused"):
            await ws_reader.connect("127.0.0.1", port, "/")
    finally:
        srv.close()
        await srv.wait_closed()


def _event(seq: int, step: int, warm: bool) -> dict[str, object]:
    data = {"t": 1700000000.25 + seq, "w": warm, "s": step}
    fields = {"agent": "renderer", "status": "running", "progress": 0.5, "message": "frame"}
    return {**fields, "data": data, "ts": "2026-11-30T00:00:00.000Z"}


def _frames(kind: str, seq: int, step: int, warm: bool = False) -> str:
    """An event as each server frames it: the hub's wire form, the raw benchmark server's
    ``json.dumps``, python-socketio's Engine.IO message."""
    event = _event(seq, step, warm)
    if kind == "hub":
        return dumps(wire_event("s1", seq, event))
    body = {"type": "agent_status", "session_id": "s1", "seq": seq, **event}
    if kind == "raw":
        return json.dumps(body)
    from socketio import packet

    encoded = packet.Packet(packet.EVENT, data=["agent_status", body]).encode()
    assert isinstance(encoded, str)
    return "4" + encoded


@pytest.mark.parametrize("kind", ["hub", "raw", "sio"])
async def test_tally_counts_each_event_once_per_connection_in_every_frame_format(
    kind: str, server: Callable[[Handler], Awaitable[int]]
) -> None:
    answered: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        await ws.send('{"type":"snapshot","session_id":"s1","last_seq":0}')
        await ws.send(_frames(kind, 1, 0, warm=True))
        await ws.send(_frames(kind, 2, 0))
        await ws.send(_frames(kind, 2, 0))  # a duplicate
        await ws.send(_frames(kind, 3, 1))
        await ws.send(_frames(kind, 1, 1))  # out of order
        if kind == "sio":
            await ws.send("2")  # Engine.IO's ping
            answered.set_result(str(await ws.recv()))
        await ws.send(_frames(kind, 4, 1))
        await ws.close()

    port = await server(handler)
    client = await ws_reader.connect("127.0.0.1", port, "/")
    tally = fanout_subscriber.Tally(kind)
    tally.listen(client)
    await client.wait_closed()  # the server closes once it has sent everything
    assert tally.count == [2, 2]  # seqs 1-2 in step 0, 3-4 in step 1
    assert tally.duplicates == {0: 1, 1: 1}
    assert sorted(tally.latencies) == [0, 1]  # warm-up (seq 1) left out of latency
    assert [len(tally.latencies[s]) for s in (0, 1)] == [1, 2]
    if kind == "sio":
        assert answered.result() == "3"
