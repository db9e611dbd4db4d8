"""Live events written straight from the fan-out (``Hub._write_now``) keep the queue's
guarantees: order per connection, each event once, flow control and 4008 for a client
that stops reading. Real uvicorn sockets, on the in-memory bus and on a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from backend.app.settings import Settings
from backend.hub.bus import History
from tests.hub.conftest import publish
from tests.support.live_server import LiveServer, live_server
from tests.support.stalled_client import StalledClient
from tests.support.ws_client import Client


@contextlib.asynccontextmanager
async def _held_reads(
    server: LiveServer, room: str, after_seq: int | None
) -> AsyncIterator[asyncio.Event]:
    """Hold the history reads of ``room`` after ``after_seq`` (a client's snapshot and
    replay) until the event is set: a slow store, on either bus."""
    bus: Any = server.services.hub.bus
    read, wanted = bus.history, after_seq
    release = asyncio.Event()

    async def held(session_id: str, after_seq: int | None, limit: int = 1000) -> History:
        if session_id == room and after_seq == wanted:
            await release.wait()
        result: History = await read(session_id, after_seq, limit)
        return result

    bus.history = held
    try:
        yield release
    finally:
        release.set()
        del bus.history


async def _caught_up(url: str) -> Client:
    client = await Client.open(url)
    await client.recv_until("snapshot")
    return client


async def test_a_live_event_never_overtakes_a_snapshot_still_being_read(
    hub_settings: Callable[..., Settings],
) -> None:
    async with live_server(hub_settings()) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            await publish(http, "dw-slow", 2)
            await publish(http, "dw-live", 1)  # so its next events are admitted as they come
            client = await _caught_up(f"{server.ws_url}/ws/dw-live")
            # dw-slow is followed already, so the join below goes straight to its snapshot.
            other = await _caught_up(f"{server.ws_url}/ws/dw-slow")
            async with _held_reads(server, "dw-slow", None) as release:
                await client.send({"action": "joinRoom", "room": "dw-slow", "request_id": 1})
                await asyncio.sleep(0.2)  # the join is handled; its snapshot waits
                # Its writer is busy with the snapshot: the live room's events queue.
                await publish(http, "dw-live", 3)
                await asyncio.sleep(0.2)
                release.set()
                seen = [await client.recv() for _ in range(5)]
            assert [m["type"] for m in seen] == ["joined", "snapshot"] + ["agent_status"] * 3
        assert seen[1]["session_id"] == "dw-slow"
        assert [m["seq"] for m in seen[2:]] == [2, 3, 4]
        await client.close()
        await other.close()


async def test_a_joining_client_gets_each_event_once_after_its_snapshot(
    hub_settings: Callable[..., Settings],
) -> None:
    async with live_server(hub_settings()) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            await publish(http, "dw-join", 3)
            watcher = await _caught_up(f"{server.ws_url}/ws/dw-join")
            async with _held_reads(server, "dw-join", 1) as release:
                joining = await Client.open(f"{server.ws_url}/ws/dw-join?last_seq=1")
                assert (await joining.recv())["type"] == "connected"
                # Published while its snapshot is held: the watcher, idle, gets them
                # written directly; the joining one must get them once, after the replay.
                await publish(http, "dw-join", 4)
                assert [e["seq"] for e in await watcher.events(4)] == [4, 5, 6, 7]
                release.set()
                snapshot = await joining.recv()
                assert snapshot["type"] == "snapshot"
                assert snapshot["recovered"] is True
                await publish(http, "dw-join", 2)
                got = await joining.events(8)
            assert [e["seq"] for e in got] == list(range(2, 10))
            await joining.send({"action": "ping"})
            assert (await joining.recv())["type"] == "pong", "nothing more: each event once"
        await joining.close()
        await watcher.close()


async def test_exactly_once_across_a_resume_while_events_keep_coming(
    hub_settings: Callable[..., Settings],
) -> None:
    async with live_server(hub_settings()) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            first = await _caught_up(f"{server.ws_url}/ws/dw-resume")
            publisher = asyncio.create_task(publish(http, "dw-resume", 60))
            got = await first.events(20)
            await first.close()
            again = await Client.open(f"{server.ws_url}/ws/dw-resume?last_seq=20")
            assert (await again.recv())["type"] == "connected"
            snapshot = await again.recv()
            assert snapshot["type"] == "snapshot"
            assert snapshot["recovered"] is True
            rest = await again.events(40)
            await publisher
            await publish(http, "dw-resume", 5)  # live again, straight from the fan-out
            rest += await again.events(5)
        assert [e["seq"] for e in got + rest] == list(range(1, 66))
        await again.send({"action": "ping"})
        assert (await again.recv())["type"] == "pong", "no event twice"
        await again.close()


async def test_a_client_that_stops_reading_falls_back_to_the_queue_and_loses_nothing(
    hub_settings: Callable[..., Settings],
) -> None:
    # Room for everything in the hub's queue: the client is slow, not too slow.
    settings = hub_settings(hub_queue_messages=1000, hub_queue_bytes=64 << 20)
    async with live_server(settings) as server:
        stalled = await asyncio.to_thread(StalledClient, f"{server.ws_url}/ws/dw-pause")
        await asyncio.sleep(0.2)  # greeted: its writer idles, live events go direct
        blob = {"frame": "x" * 40_000}
        total = 300  # ~12 MB: more than the kernel's buffers and asyncio's mark hold
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            await publish(http, "dw-pause", total, data=blob)
        messages = await asyncio.to_thread(stalled.read_all, 3.0)
        stalled.close()
    assert stalled.close_code is None, "slow but within its queue: not closed"
    seqs = [m["seq"] for m in messages if m.get("type") == "agent_status"]
    assert seqs == list(range(1, total + 1)), "every event, in order, once"


async def test_a_client_that_never_reads_is_still_closed_4008(
    hub_settings: Callable[..., Settings],
) -> None:
    total = 400
    settings = hub_settings(hub_queue_messages=50, hub_queue_bytes=256 * 1024)
    async with live_server(settings) as server:
        stalled = await asyncio.to_thread(StalledClient, f"{server.ws_url}/ws/dw-stall")
        await asyncio.sleep(0.2)  # greeted and idle: the first events are written directly
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            await publish(http, "dw-stall", total, data={"frame": "x" * 40_000})
        messages = await asyncio.to_thread(stalled.read_all)
        stalled.close()
    assert stalled.close_code == 4008
    seqs = [m["seq"] for m in messages if m.get("type") == "agent_status"]
    assert seqs == list(range(1, len(seqs) + 1)), "what it got was in order, no gaps"
    assert len(seqs) < total
