"""The service's uvicorn WebSocket protocol: less held per connection, the same behaviour.

The hub's suite runs every WebSocket through it (tests/support); these tests cover what
it changed: what an idle connection keeps, reads that are cancelled, write flow control
and the keep-alive pings started where the handshake is dropped.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable

import pytest

from backend.app.lean_ws_protocol import LeanWebSocketProtocol, _Flag, _Inbox
from backend.app.settings import Settings
from tests.support.live_server import live_server
from tests.support.ws_client import Client


async def test_an_idle_socket_keeps_neither_its_handshake_nor_asyncio_queues(
    make_settings: Callable[..., Settings],
) -> None:
    async with live_server(make_settings()) as server:
        client = await Client.open(f"{server.ws_url}/ws/idle-1")
        await client.recv()  # connected
        await client.recv()  # snapshot
        (protocol,) = [
            p
            for p in server.server.server_state.connections
            if isinstance(p, LeanWebSocketProtocol)
        ]
        assert not hasattr(protocol, "request")
        assert not hasattr(protocol, "response")
        # websockets' parser keeps the request as a local of its suspended generator.
        request = protocol.conn.parser.gi_frame.f_locals.get("request")
        assert request is None or not request.headers
        # Each of these carried one deque or more (~0.8 KiB each) for the connection's life.
        assert not isinstance(protocol.queue, asyncio.Queue)
        assert not isinstance(protocol.writable, asyncio.Event)
        await client.send({"action": "ping"})
        assert (await client.recv())["type"] == "pong"
        await client.close()


async def test_keepalive_pings_go_on_and_a_client_that_never_answers_is_dropped(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(ws_ping_interval_s=0.1, ws_ping_timeout_s=0.3)
    async with live_server(settings) as server:
        answering = await Client.open(f"{server.ws_url}/ws/pings-1")
        await answering.recv()
        await answering.recv()
        opcodes = await _silent_client_frames(server.port, "/ws/pings-1")
        assert 0x9 in opcodes, "the server pinged the silent client"
        assert opcodes[-1] == 0x8, "then closed it when no pong came"
        # The client that answers was pinged all along and is still served.
        await answering.send({"action": "ping"})
        assert (await answering.recv())["type"] == "pong"
        await answering.close()


async def _silent_client_frames(port: int, path: str) -> list[int]:
    """Open a WebSocket by hand, never answer, and return the opcodes of the server's
    frames until it closes the TCP connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    async with asyncio.timeout(30):  # a hang guard, not a timing
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        opcodes = []
        while header := await reader.read(2):
            if len(header) < 2:
                header += await reader.readexactly(1)
            length = header[1] & 0x7F
            if length == 126:
                length = int.from_bytes(await reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await reader.readexactly(8), "big")
            await reader.readexactly(length)
            opcodes.append(header[0] & 0x0F)
    writer.close()
    return opcodes


async def test_a_cancelled_read_loses_no_message() -> None:
    inbox = _Inbox()
    read = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    read.cancel()  # the hub interrupts a connection's read this way
    with pytest.raises(asyncio.CancelledError):
        await read
    inbox.put_nowait({"n": 1})
    inbox.put_nowait({"n": 2})
    assert not inbox.empty()
    assert await inbox.get() == {"n": 1}
    assert await inbox.get() == {"n": 2}
    assert inbox.empty()


async def test_a_read_waits_for_the_next_message() -> None:
    inbox = _Inbox()
    read = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    assert not read.done()
    inbox.put_nowait("hello")
    assert await read == "hello"


async def test_writers_wait_while_the_transport_is_paused_and_all_resume() -> None:
    writable = _Flag(is_set=True)
    assert await writable.wait()  # not paused: no wait at all
    writable.clear()  # pause_writing
    first = asyncio.ensure_future(writable.wait())
    gone = asyncio.ensure_future(writable.wait())
    second = asyncio.ensure_future(writable.wait())
    await asyncio.sleep(0)
    assert not first.done()
    assert not second.done()
    gone.cancel()
    await asyncio.sleep(0)
    writable.set()  # resume_writing
    assert await first
    assert await second
    assert writable.is_set()
