"""One room, two transports: a native WebSocket client and an API Gateway client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from backend.app.settings import Settings
from tests.support.live_server import live_server
from tests.support.moto_apigw import REGION, MotoConnections
from tests.support.ws_client import Client

SECRET = "m" * 40
ROOM = "mixed-1"


def _headers(cid: str, event: str) -> dict[str, str]:
    return {"connectionId": cid, "eventType": event, "X-Gateway-Secret": SECRET}


async def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 15
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


async def test_native_and_gateway_clients_share_a_room(
    make_settings: Callable[..., Settings],
    moto_connections: MotoConnections,
    redis_url: str,
    redis_prefix: str,
) -> None:
    settings = make_settings(
        apigw_shared_secret=SECRET,
        aws_region=REGION,
        apigw_management_endpoint=moto_connections.endpoint,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
    )
    async with (
        live_server(settings) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=10) as http,
    ):
        native = await Client.open(f"{server.ws_url}/ws/{ROOM}")
        native_id = (await native.recv_until("snapshot"))[0]["connection_id"]
        assert (
            await http.post("/ws", params={"session_id": ROOM}, headers=_headers("gw=", "CONNECT"))
        ).status_code == 200
        assert (
            await http.post("/ws", content='{"action": "ping"}', headers=_headers("gw=", "MESSAGE"))
        ).status_code == 200

        await native.send({"action": "broadcast", "message": "from native"})
        assert (await native.recv())["type"] == "sent"
        await _eventually(
            lambda: (
                {"type": "message", "from": native_id, "room": ROOM, "message": "from native"}
                in moto_connections.messages("gw=")
            ),
            "native broadcast reaches the gateway client",
        )

        await http.post(
            "/ws",
            content='{"action": "broadcast", "message": "from gateway"}',
            headers=_headers("gw=", "MESSAGE"),
        )
        assert await native.recv() == {
            "type": "message",
            "from": "gw=",
            "room": ROOM,
            "message": "from gateway",
        }

        await http.post(
            "/ws",
            headers=_headers("gw=", "MESSAGE"),
            content=(
                f'{{"action": "sendMessage", "targetId": "{native_id}", "message": "direct"}}'
            ),
        )
        assert await native.recv() == {"type": "message", "from": "gw=", "message": "direct"}

        for _ in range(3):
            await http.post(
                f"/api/sessions/{ROOM}/events", json={"agent": "renderer", "status": "running"}
            )
        assert [e["seq"] for e in await native.events(3)] == [1, 2, 3]
        await _eventually(
            lambda: (
                [m["seq"] for m in moto_connections.messages("gw=") if m["type"] == "agent_status"]
                == [1, 2, 3]
            ),
            "both transports get the events once, in order",
        )
        await native.close()
