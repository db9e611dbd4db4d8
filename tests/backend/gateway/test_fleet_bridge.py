"""The bridge across a fleet: CONNECT on one process, joinRoom on another, events from the bus.

Two gateway components (two "processes") share the real Redis and the room feed; the
feed stands in for the status hub's bus until that branch lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from backend.app.auth import Principal, Role, TokenVerifier, mint_token
from backend.app.errors import Forbidden
from backend.app.gateway.bridge import GatewayBridge
from backend.app.gateway.component import open_gateway
from backend.app.settings import Settings
from backend.app.storage import open_store
from tests.backend.gateway.memory_feed import MemoryFeed
from tests.conftest import JWT_SECRET
from tests.support.moto_apigw import REGION, MotoConnections

ROOM = "sess-fleet"


@pytest.fixture
async def fleet(
    make_settings: Callable[..., Settings],
    moto_connections: MotoConnections,
    redis_url: str,
    redis_prefix: str,
) -> AsyncIterator[tuple[list[GatewayBridge], MemoryFeed]]:
    settings = make_settings(
        apigw_shared_secret="k" * 40,
        apigw_management_endpoint=moto_connections.endpoint,
        aws_region=REGION,
        auth_jwt_secret=JWT_SECRET,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
    )
    feed = MemoryFeed()
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient())
        bridges = []
        for _ in range(2):
            store = open_store(redis_url, prefix=redis_prefix)
            stack.push_async_callback(store.close)
            tokens = TokenVerifier(settings, http)
            bridge = await stack.enter_async_context(
                open_gateway(settings, store, tokens, feed=feed)
            )
            assert bridge is not None
            bridges.append(bridge)
        yield bridges, feed


async def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 15
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


def _seqs(moto: MotoConnections, cid: str) -> list[int]:
    return [m["seq"] for m in moto.messages(cid) if m.get("type") == "agent_status"]


def _query(**extra: Any) -> dict[str, str]:
    return {"token": mint_token(JWT_SECRET, "alice", Role.USER), **extra}


async def test_events_reach_a_connection_registered_elsewhere_in_order_once(
    fleet: tuple[list[GatewayBridge], MemoryFeed], moto_connections: MotoConnections
) -> None:
    (a, b), feed = fleet
    await a.connect("c1=", _query())
    await b.message("c1=", f'{{"action": "joinRoom", "room": "{ROOM}"}}')
    assert [m["type"] for m in moto_connections.messages("c1=")] == ["connected", "joined"]
    for _ in range(10):
        feed.publish(ROOM)
    await _eventually(lambda: len(_seqs(moto_connections, "c1=")) >= 10, "ten events")
    assert _seqs(moto_connections, "c1=") == list(range(1, 11))


async def test_resume_with_last_seq_through_the_bridge(
    fleet: tuple[list[GatewayBridge], MemoryFeed], moto_connections: MotoConnections
) -> None:
    (a, b), feed = fleet
    await a.connect("live=", _query())
    await a.message("live=", f'{{"action": "joinRoom", "room": "{ROOM}"}}')
    for _ in range(9):
        feed.publish(ROOM)
    await _eventually(lambda: len(_seqs(moto_connections, "live=")) == 9, "pump running")

    await b.connect("back=", _query(session_id=ROOM, last_seq="6"))
    await a.message("back=", f'{{"action": "resume", "room": "{ROOM}", "last_seq": 6}}')
    await _eventually(lambda: _seqs(moto_connections, "back=") == [7, 8, 9], "replay 7..9")
    feed.publish(ROOM)
    await _eventually(lambda: _seqs(moto_connections, "back=") == [7, 8, 9, 10], "live 10")
    assert _seqs(moto_connections, "live=") == list(range(1, 11))


async def test_disconnect_on_one_process_stops_posts_from_the_other(
    fleet: tuple[list[GatewayBridge], MemoryFeed], moto_connections: MotoConnections
) -> None:
    (a, b), feed = fleet
    for cid in ("gone=", "here="):
        await a.connect(cid, _query())
        await a.message(cid, f'{{"action": "joinRoom", "room": "{ROOM}"}}')
    feed.publish(ROOM)
    await _eventually(lambda: _seqs(moto_connections, "gone=") == [1], "first event")
    await b.disconnect("gone=")
    assert await a.registry.get("gone=") is None
    assert await a.registry.members(ROOM) == {"here="}
    feed.publish(ROOM)
    await _eventually(lambda: _seqs(moto_connections, "here=") == [1, 2], "second event")
    assert _seqs(moto_connections, "gone=") == [1]


class OwnedSessions:
    """Session owners as the pipeline will know them."""

    def __init__(self, owners: dict[str, str]) -> None:
        self.owners = owners

    async def check(self, principal: Principal, room: str) -> None:
        if not principal.may_access(self.owners.get(room)):
            raise Forbidden("that session belongs to someone else", code="forbidden_session")


async def test_connect_to_someone_elses_session_is_refused_with_403(
    make_settings: Callable[..., Settings], moto_connections: MotoConnections
) -> None:
    settings = make_settings(
        apigw_shared_secret="k" * 40,
        apigw_management_endpoint=moto_connections.endpoint,
        aws_region=REGION,
        auth_jwt_secret=JWT_SECRET,
    )
    access = OwnedSessions({"bobs-run": "bob"})
    store = open_store(None)
    async with (
        httpx.AsyncClient() as http,
        open_gateway(settings, store, TokenVerifier(settings, http), access=access) as bridge,
    ):
        assert bridge is not None
        with pytest.raises(Forbidden):
            await bridge.connect("nosy=", _query(session_id="bobs-run"))
        assert await bridge.registry.get("nosy=") is None
        bob = {"token": mint_token(JWT_SECRET, "bob", Role.USER), "session_id": "bobs-run"}
        assert (await bridge.connect("bob=", bob)).sub == "bob"
        agent = {"token": mint_token(JWT_SECRET, "agent-7", Role.AGENT), "session_id": "bobs-run"}
        assert (await bridge.connect("agent=", agent)).sub == "agent-7"
    assert moto_connections.raw("nosy=") == b""
