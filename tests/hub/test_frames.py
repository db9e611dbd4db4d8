"""Events through the service's WebSocket protocol: one frame per event, shared by all.

Under ``backend.app.ws_protocol.FramesProtocol`` (what the service runs) a connection's
ready events leave in one write, from frames encoded once per event; a client must not
be able to tell: every member gets every event once, in order, as the same message.
"""

from __future__ import annotations

import asyncio
import json

import httpx

from backend.app.routers.ws import FramesTransport
from backend.hub.events import new_event_fields
from tests.support.frame_schema import check_server_frame
from tests.support.live_server import LiveServer
from tests.support.ws_client import Client

MEMBERS = 4
BURST = 60


async def _texts(client: Client, count: int) -> list[str]:
    """The next ``count`` event messages, as the raw text the client received."""
    texts: list[str] = []
    while len(texts) < count:
        raw = await asyncio.wait_for(client.ws.recv(), 20)
        assert isinstance(raw, str), "events are text messages"
        message = json.loads(raw)
        check_server_frame(message)
        if message["type"] == "agent_status":
            texts.append(raw)
    return texts


async def test_a_burst_reaches_every_member_once_in_order_as_the_same_messages(
    server: LiveServer,
) -> None:
    hub = server.services.hub
    await hub.publish("burst-1", new_event_fields("renderer", "running"))  # the epoch
    clients = [await Client.open(f"{server.ws_url}/ws/burst-1") for _ in range(MEMBERS)]
    for client in clients:
        await client.recv_until("snapshot")
    # The fast path is what this test is about: the service's protocol offered it.
    transports = {type(conn.transport) for conn in hub._connections.values()}
    assert transports == {FramesTransport}

    for i in range(BURST):  # no await between them on the memory bus: one batch each
        await hub.publish("burst-1", new_event_fields("renderer", "running", message=f"{i}"))
    received = await asyncio.gather(*(_texts(client, BURST) for client in clients))

    seqs = [json.loads(text)["seq"] for text in received[0]]
    assert seqs == list(range(2, BURST + 2)), "every event once, in order"
    assert all(texts == received[0] for texts in received), "the same message for everyone"
    for client in clients:
        await client.send({"action": "ping"})
        assert (await client.recv())["type"] == "pong", "nothing more, nothing after"
        await client.close()

    # Counted once per batch, but still one per event delivered (the operators' figure).
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        metrics = (await http.get("/metrics")).text
    assert f"hub_events_delivered_total {float(MEMBERS * BURST)}" in metrics
