"""Slow clients, lost history: what a client sees when it cannot keep up or comes back late."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from backend.app.settings import Settings
from tests.hub.conftest import publish
from tests.support.live_server import live_server
from tests.support.stalled_client import StalledClient
from tests.support.ws_client import Client


async def test_resume_older_than_the_history_gets_a_fresh_snapshot(
    hub_settings: Callable[..., Settings],
) -> None:
    async with live_server(hub_settings(hub_history_size=10)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            await publish(http, "old-1", 30, agent="renderer")
            await publish(http, "old-1", 1, agent="narrator")
        client = await Client.open(f"{server.ws_url}/ws/old-1?last_seq=2")
        await client.recv()
        snapshot = await client.recv()
        assert snapshot["recovered"] is False
        assert snapshot["last_seq"] == 31
        assert snapshot["agents"]["renderer"]["seq"] == 30
        assert snapshot["agents"]["narrator"]["seq"] == 31
        await client.send({"action": "ping"})
        assert (await client.recv())["type"] == "pong", "no partial replay after the snapshot"
        await client.close()


async def test_a_stalled_client_is_closed_4008_and_others_keep_up(
    hub_settings: Callable[..., Settings],
) -> None:
    settings = hub_settings(hub_queue_messages=50, hub_queue_bytes=256 * 1024)
    async with live_server(settings) as server:
        healthy = await Client.open(f"{server.ws_url}/ws/flood-1")
        await healthy.recv_until("snapshot")
        # A client that stops reading right after the handshake.
        stalled = await asyncio.to_thread(StalledClient, f"{server.ws_url}/ws/flood-1")
        blob = {"frame": "x" * 40_000}  # 400 events of ~40 KB: more than kernel buffers hold
        total = 400
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            publisher = asyncio.create_task(publish(http, "flood-1", total, data=blob))
            received = await healthy.events(total, timeout=30)
            await publisher
        assert [e["seq"] for e in received] == list(range(1, total + 1))

        # The stalled client now reads: what was already on the wire, then the 4008 close.
        messages = await asyncio.to_thread(stalled.read_all)
        stalled.close()
        got = [m["seq"] for m in messages if m.get("type") == "agent_status"]
        assert stalled.close_code == 4008
        assert len(got) < total
        # Its snapshot may already cover the first events (it joined while they were
        # published); what follows the snapshot is in order with no gaps.
        snapshot = next(m for m in messages if m.get("type") == "snapshot")
        first = snapshot["last_seq"] + 1
        assert got == list(range(first, first + len(got))), "what it got was in order, no gaps"

        # It resumes where it stopped and loses nothing.
        again = await Client.open(f"{server.ws_url}/ws/flood-1?last_seq={len(got)}")
        await again.recv()
        snapshot = await again.recv()
        assert snapshot["recovered"] is True
        rest = await again.events(total - len(got), timeout=30)
        assert [e["seq"] for e in rest] == list(range(len(got) + 1, total + 1))
        await again.close()
        await healthy.close()
