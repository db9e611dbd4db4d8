"""The bridge across a fleet over the real status hub and Redis.

Each "process" here is a hub (its own Redis connections, bus listener and node id) with
its gateway component, all sharing one Redis and one moto @connections backend: CONNECT
on one, joinRoom on another, events published through a third.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from backend.core.api_keys import ApiKeys
from backend.core.auth import Principal, Role, TokenVerifier, mint_token
from backend.core.authenticator import Authenticator
from backend.core.errors import Forbidden
from backend.core.health import HealthChecks
from backend.core.metrics import Metrics
from backend.core.storage import open_store
from backend.gateway.bridge import GatewayBridge
from backend.gateway.factory import open_gateway
from backend.hub.events import new_event_fields
from backend.hub.factory import open_hub
from backend.hub.hub import Hub
from backend.hub.sessions import Sessions
from tests.conftest import JWT_SECRET
from tests.support.moto_apigw import REGION, MotoConnections

ROOM = "sess-fleet"
Fleet = tuple[list[GatewayBridge], list[Hub], Sessions]


@pytest.fixture
async def fleet(
    make_settings: Callable[..., Settings],
    moto_connections: MotoConnections,
    redis_url: str,
    redis_prefix: str,
) -> AsyncIterator[Fleet]:
    settings = make_settings(
        apigw_shared_secret="k" * 40,
        apigw_management_endpoint=moto_connections.endpoint,
        aws_region=REGION,
        auth_jwt_secret=JWT_SECRET,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
    )
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient())
        bridges, hubs, sessions = [], [], []
        for _ in range(3):
            store = open_store(redis_url, prefix=redis_prefix)
            stack.push_async_callback(store.close)
            metrics = Metrics("test", "test")
            hub, owners = await stack.enter_async_context(
                open_hub(settings, store, metrics, HealthChecks())
            )
            auth = Authenticator(TokenVerifier(settings, http), ApiKeys(store))
            bridge = await stack.enter_async_context(
                open_gateway(settings, store, auth, metrics, hub=hub)
            )
            assert bridge is not None
            bridges.append(bridge)
            hubs.append(hub)
            sessions.append(owners)
        yield bridges, hubs, sessions[0]


async def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 15
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


def _seqs(moto: MotoConnections, cid: str) -> list[int]:
    return [m["seq"] for m in moto.messages(cid) if m.get("type") == "agent_status"]


def _query(**extra: Any) -> dict[str, str]:
    return {"token": mint_token(JWT_SECRET, "renderer", Role.AGENT), **extra}


async def _publish(hub: Hub, n: int = 1) -> None:
    for i in range(n):
        await hub.publish(ROOM, new_event_fields("writer", "running", message=str(i)))


async def test_events_reach_a_connection_registered_elsewhere_in_order_once(
    fleet: Fleet, moto_connections: MotoConnections
) -> None:
    (a, b, _), (_, _, publisher), _ = fleet
    await a.connect("c1=", _query())
    await b.message("c1=", f'{{"action": "joinRoom", "room": "{ROOM}"}}')
    assert [m["type"] for m in moto_connections.messages("c1=")] == [
        "connected",
        "joined",
        "snapshot",
    ]
    await _publish(publisher, 10)
    await _eventually(lambda: len(_seqs(moto_connections, "c1=")) >= 10, "ten events")
    await asyncio.sleep(0.3)  # nothing more arrives: each event exactly once
    assert _seqs(moto_connections, "c1=") == list(range(1, 11))


async def test_resume_with_last_seq_through_the_bridge(
    fleet: Fleet, moto_connections: MotoConnections
) -> None:
    (a, b, _), (_, _, publisher), _ = fleet
    await a.connect("live=", _query())
    await a.message("live=", f'{{"action": "joinRoom", "room": "{ROOM}"}}')
    await _publish(publisher, 9)
    await _eventually(lambda: len(_seqs(moto_connections, "live=")) == 9, "pump running")

    await b.connect("back=", _query())
    await a.message("back=", f'{{"action": "resume", "room": "{ROOM}", "last_seq": 6}}')
    snapshot = next(m for m in moto_connections.messages("back=") if m["type"] == "snapshot")
    assert snapshot["recovered"] is True
    await _eventually(lambda: _seqs(moto_connections, "back=") == [7, 8, 9], "replay 7..9")
    await _publish(publisher)
    await _eventually(lambda: _seqs(moto_connections, "back=") == [7, 8, 9, 10], "live 10")
    assert _seqs(moto_connections, "live=") == list(range(1, 11))


async def test_disconnect_on_one_process_stops_posts_from_the_other(
    fleet: Fleet, moto_connections: MotoConnections
) -> None:
    (a, b, _), (_, _, publisher), _ = fleet
    for cid in ("gone=", "here="):
        await a.connect(cid, _query())
        await a.message(cid, f'{{"action": "joinRoom", "room": "{ROOM}"}}')
    await _publish(publisher)
    await _eventually(lambda: _seqs(moto_connections, "gone=") == [1], "first event")
    await b.disconnect("gone=")
    assert await a.registry.get("gone=") is None
    assert await a.registry.members(ROOM) == {"here="}
    await _publish(publisher)
    await _eventually(lambda: _seqs(moto_connections, "here=") == [1, 2], "second event")
    assert _seqs(moto_connections, "gone=") == [1]


async def test_broadcast_between_gateway_clients_on_different_processes(
    fleet: Fleet, moto_connections: MotoConnections
) -> None:
    (a, b, _), _, _ = fleet
    for bridge, cid in ((a, "x="), (b, "y=")):
        await bridge.connect(cid, _query())
        await bridge.message(cid, f'{{"action": "joinRoom", "room": "{ROOM}"}}')
    await b.message("y=", f'{{"action": "broadcast", "room": "{ROOM}", "message": "hi"}}')
    assert {"type": "message", "from": "y=", "room": ROOM, "message": "hi"} in (
        moto_connections.messages("x=")
    )
    await a.message("x=", '{"action": "sendMessage", "targetId": "y=", "message": "yo"}')
    assert moto_connections.messages("y=")[-1] == {"type": "message", "from": "x=", "message": "yo"}
    assert moto_connections.messages("x=")[-1] == {"type": "sent", "target": "y="}


async def test_connect_to_someone_elses_session_is_refused_with_403(
    fleet: Fleet, moto_connections: MotoConnections
) -> None:
    (a, _, _), _, sessions = fleet
    record = await sessions.create(Principal("bob", Role.USER), "bob's video", {})
    nosy = {"token": mint_token(JWT_SECRET, "alice", Role.USER), "session_id": record.session_id}
    with pytest.raises(Forbidden):
        await a.connect("nosy=", nosy)
    assert await a.registry.get("nosy=") is None
    owner = {"token": mint_token(JWT_SECRET, "bob", Role.USER), "session_id": record.session_id}
    assert (await a.connect("bob=", owner)).sub == "bob"
    assert moto_connections.raw("nosy=") == b""
