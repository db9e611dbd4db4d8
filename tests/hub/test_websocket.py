"""The status hub over real WebSockets (CONTRACT §2.1), on the in-memory bus and Redis."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.hub.conftest import publish
from tests.support.live_server import LiveServer
from tests.support.ws_client import Client


async def test_handshake_then_live_events_in_order(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    client = await Client.open(f"{server.ws_url}/ws/render-1")
    connected = await client.recv()
    assert connected["type"] == "connected"
    assert connected["session_id"] == "render-1"
    assert connected["connection_id"]
    snapshot = await client.recv()
    assert snapshot == {
        "type": "snapshot",
        "session_id": "render-1",
        "epoch": snapshot["epoch"],
        "last_seq": 0,
        "recovered": False,
        "agents": {},
    }
    await publish(http, "render-1", 3, progress=0.5)
    events = await client.events(3)
    assert [e["seq"] for e in events] == [1, 2, 3]
    first = events[0]
    assert first["type"] == "agent_status"
    assert first["session_id"] == "render-1"
    assert (first["agent"], first["status"], first["progress"]) == ("script_writer", "running", 0.5)
    assert first["ts"].endswith("Z")
    await client.close()


async def test_query_form_is_the_same_endpoint(server: LiveServer, http: httpx.AsyncClient) -> None:
    await publish(http, "q-1", 2, agent="narrator")
    client = await Client.open(f"{server.ws_url}/ws?session_id=q-1")
    assert (await client.recv())["session_id"] == "q-1"
    snapshot = await client.recv()
    assert snapshot["last_seq"] == 2
    assert snapshot["agents"]["narrator"]["seq"] == 2
    await client.close()


async def test_rooms_by_action_ping_and_request_ids(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    client = await Client.open(f"{server.ws_url}/ws")
    assert (await client.recv())["session_id"] is None
    await client.send({"action": "ping", "request_id": "p1"})
    assert await client.recv() == {"type": "pong", "request_id": "p1"}
    await client.send({"action": "subscribe", "room": "r-9", "request_id": 5})
    assert await client.recv() == {"type": "joined", "room": "r-9", "request_id": 5}
    assert (await client.recv())["type"] == "snapshot"
    await publish(http, "r-9")
    assert (await client.events(1))[0]["seq"] == 1
    await client.send({"action": "leaveRoom", "room": "r-9", "request_id": 6})
    assert await client.recv() == {"type": "left", "room": "r-9", "request_id": 6}
    await publish(http, "r-9")
    await client.send({"action": "ping"})
    assert await client.recv() == {"type": "pong"}, "no event after leaving"
    await client.close()


async def test_resume_gets_exactly_the_missed_events(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    first = await Client.open(f"{server.ws_url}/ws/res-1")
    await first.recv_until("snapshot")
    await publish(http, "res-1", 3)
    seen = await first.events(3)
    epoch_snapshot = seen[-1]["seq"]
    await first.close()

    await publish(http, "res-1", 5)  # missed while away
    again = await Client.open(f"{server.ws_url}/ws/res-1?last_seq={epoch_snapshot}")
    await again.recv()  # connected
    snapshot = await again.recv()
    assert snapshot["recovered"] is True
    assert snapshot["last_seq"] == 8
    replay = await again.events(5)
    assert [e["seq"] for e in replay] == [4, 5, 6, 7, 8]
    await publish(http, "res-1")
    assert [e["seq"] for e in await again.events(1)] == [9]
    await again.send({"action": "ping"})
    assert (await again.recv())["type"] == "pong", "nothing was sent twice"
    await again.close()


async def test_resume_action_on_an_open_connection(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    await publish(http, "res-2", 4)
    client = await Client.open(f"{server.ws_url}/ws/res-2")
    snapshot = (await client.recv_until("snapshot"))[-1]
    await client.send(
        {
            "action": "resume",
            "room": "res-2",
            "last_seq": 2,
            "epoch": snapshot["epoch"],
            "request_id": "again",
        }
    )
    resumed = await client.recv()
    assert resumed["type"] == "snapshot"
    assert resumed["recovered"] is True
    assert [e["seq"] for e in await client.events(2)] == [3, 4]
    await client.close()


async def test_errors_never_close_a_healthy_connection(server: LiveServer) -> None:
    client = await Client.open(f"{server.ws_url}/ws")
    await client.recv()
    cases = [
        ("{oops", "invalid_json"),
        (json.dumps({"action": "teleport", "request_id": "t"}), "unknown_action"),
        (json.dumps({"action": "joinRoom", "request_id": "j"}), "missing_field"),
        (json.dumps({"action": "joinRoom", "room": "bad room!"}), "invalid_room"),
        (json.dumps({"action": "broadcast", "message": "x"}), "missing_field"),
        (
            json.dumps({"action": "sendMessage", "targetId": "nope.1", "message": "x"}),
            "unknown_target",
        ),
    ]
    for text, code in cases:
        await client.send(text)
        reply = await client.recv()
        assert reply["type"] == "error"
        assert reply["code"] == code, reply
        assert reply["message"]
    assert reply["request_id"] is None
    await client.send({"action": "teleport", "request_id": "t"})
    assert (await client.recv())["request_id"] == "t"
    await client.send({"action": "ping"})
    assert (await client.recv())["type"] == "pong"
    await client.close()


async def test_a_frame_over_the_limit_closes_with_1009(server: LiveServer) -> None:
    client = await Client.open(f"{server.ws_url}/ws", max_size=None)
    await client.recv()
    await client.send({"action": "ping", "pad": "x" * (70 * 1024)})
    assert await client.closed_with() == 1009


async def test_broadcast_and_send_message_between_members(server: LiveServer) -> None:
    alice = await Client.open(f"{server.ws_url}/ws/chat-1")
    alice_id = (await alice.recv_until("snapshot"))[0]["connection_id"]
    bob = await Client.open(f"{server.ws_url}/ws/chat-1")
    bob_id = (await bob.recv_until("snapshot"))[0]["connection_id"]
    outsider = await Client.open(f"{server.ws_url}/ws/other-room")
    await outsider.recv_until("snapshot")

    await alice.send({"action": "broadcast", "message": {"hello": "room"}, "request_id": 1})
    assert await alice.recv() == {"type": "sent", "room": "chat-1", "request_id": 1}
    assert await bob.recv() == {
        "type": "message",
        "from": alice_id,
        "room": "chat-1",
        "message": {"hello": "room"},
    }

    await bob.send({"action": "sendMessage", "targetId": alice_id, "message": "psst"})
    assert (await bob.recv())["type"] == "sent"
    assert await alice.recv() == {"type": "message", "from": bob_id, "message": "psst"}

    await outsider.send({"action": "sendMessage", "targetId": alice_id, "message": "hi"})
    assert (await outsider.recv())["code"] == "unknown_target"
    await outsider.send({"action": "ping"})
    await alice.send({"action": "ping"})
    assert (await alice.recv())["type"] == "pong", "the outsider's message never arrived"
    for client in (alice, bob, outsider):
        await client.close()


async def test_publishing_validates_its_input(http: httpx.AsyncClient) -> None:
    bad = [
        {"agent": "a", "status": "exploded"},
        {"agent": "a", "status": "running", "progress": 1.5},
        {"agent": "", "status": "running"},
        {"status": "running"},
        {"agent": "a", "status": "running", "surprise": 1},
    ]
    for body in bad:
        response = await http.post("/api/sessions/v-1/events", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "validation_error"
    assert (
        await http.post("/api/sessions/bad id/events", json={"agent": "a", "status": "info"})
    ).status_code == 400


@pytest.mark.parametrize("concurrency", [20])
async def test_concurrent_publishers_get_distinct_consecutive_seqs(
    http: httpx.AsyncClient, concurrency: int
) -> None:
    results = await asyncio.gather(
        *(publish(http, "race-1", 1, agent=f"a{i}") for i in range(concurrency))
    )
    assert sorted(seq for [seq] in results) == list(range(1, concurrency + 1))
