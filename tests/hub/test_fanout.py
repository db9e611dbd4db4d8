"""Many members of one room: every one gets every event once, in order, however they came.

The hub shares work between a room's members (one history read when they all need the
same one, whatever is queued sent at once); these tests hold it to the per-client promises.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from backend.hub.bus import History
from backend.hub.replay import SharedReads
from tests.hub.conftest import publish
from tests.support.live_server import LiveServer
from tests.support.ws_client import Client

MEMBERS = 30


async def _after_snapshot(client: Client, count: int) -> list[int]:
    """The seqs of ``count`` events; a snapshot met on the way (a new epoch) restarts them
    at its ``last_seq``, as a client would."""
    seqs: list[int] = []
    while len(seqs) < count:
        message = await client.recv(timeout=20)
        if message["type"] == "snapshot":
            seqs = list(range(1, message["last_seq"] + 1))[-count:] if message["last_seq"] else []
        elif message["type"] == "agent_status":
            seqs.append(message["seq"])
    return seqs


async def test_members_of_a_fresh_room_get_every_event_once_in_order(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    clients = await asyncio.gather(
        *(Client.open(f"{server.ws_url}/ws/fresh-1") for _ in range(MEMBERS))
    )
    for client in clients:
        snapshot = (await client.recv_until("snapshot"))[-1]
        assert snapshot["last_seq"] == 0
    # The room's first event starts its epoch: shown the empty room, each member admits it.
    await publish(http, "fresh-1", 40)
    for client in clients:
        assert await _after_snapshot(client, 40) == list(range(1, 41))
        await client.send({"action": "ping"})
        assert (await client.recv())["type"] == "pong", "nothing repeated after seq 40"
    await asyncio.gather(*(client.close() for client in clients))


async def test_a_reconnect_storm_resumes_every_client_from_its_own_seq(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    await publish(http, "storm-1", 50)
    first = await Client.open(f"{server.ws_url}/ws/storm-1")
    epoch = (await first.recv_until("snapshot"))[-1]["epoch"]
    await first.close()
    resume_points = [i % 45 for i in range(MEMBERS)]  # many share one, some do not
    clients = await asyncio.gather(
        *(
            Client.open(f"{server.ws_url}/ws/storm-1?last_seq={seq}&epoch={epoch}")
            for seq in resume_points
        )
    )
    live = asyncio.create_task(publish(http, "storm-1", 10))  # while they catch up
    for client, seq in zip(clients, resume_points, strict=True):
        snapshot = (await client.recv_until("snapshot"))[-1]
        assert snapshot["recovered"] is True
        got = [e["seq"] for e in await client.events(60 - seq, timeout=20)]
        assert got == list(range(seq + 1, 61))
    await live
    await asyncio.gather(*(client.close() for client in clients))


class _CountingReader:
    def __init__(self) -> None:
        self.reads = 0
        self.release = asyncio.Event()

    async def history(self, session_id: str, after_seq: int | None, limit: int = 1000) -> Any:
        self.reads += 1
        number = self.reads
        await self.release.wait()
        return History(epoch="e", last_seq=number, agents={})


async def test_a_read_is_shared_only_until_an_event_of_its_room_arrives() -> None:
    reader = _CountingReader()
    reads = SharedReads(reader)
    together = [asyncio.create_task(reads.history("r", 5)) for _ in range(10)]
    other_room = asyncio.create_task(reads.history("q", 5))
    await asyncio.sleep(0)
    reads.invalidate("r")  # an event of "r": a newcomer must not take the older read
    late = asyncio.create_task(reads.history("r", 5))
    await asyncio.sleep(0)
    reader.release.set()
    seen = {(await task).last_seq for task in together}
    assert len(seen) == 1, "the ten members shared one read"
    assert (await late).last_seq not in seen
    await other_room
    assert reader.reads == 3
