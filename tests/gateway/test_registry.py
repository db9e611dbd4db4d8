"""The connection registry, against the in-memory store and the real Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from backend.core.auth import Role
from backend.core.storage import Store, open_store
from backend.gateway.apigw_sender import ApiGatewaySender, build_client
from backend.gateway.keepalive import KeepAlive
from backend.gateway.registry import CONNECTION_CAP_S, ConnectionRegistry, GatewayConnection
from tests.support.moto_apigw import REGION, MotoConnections


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, redis_url: str, redis_prefix: str
) -> AsyncIterator[Store]:
    opened = open_store(redis_url if request.param == "redis" else None, prefix=redis_prefix)
    yield opened
    await opened.close()


def _conn(cid: str, age_s: float = 0.0) -> GatewayConnection:
    return GatewayConnection(cid, "alice", Role.USER, False, connected_at=time.time() - age_s)


async def test_records_expire_with_api_gateways_two_hour_cap(store: Store) -> None:
    registry = ConnectionRegistry(store)
    await registry.register(_conn("a=", age_s=600))
    await registry.join(_conn("a=", age_s=600), "room-1")
    for key in ("apigw:conn:a=", "apigw:conn:a=:rooms"):
        ttl = await store.ttl(key)
        assert ttl is not None
        assert CONNECTION_CAP_S - 700 < ttl <= CONNECTION_CAP_S - 600
    assert await store.ttl("apigw:room:room-1") == pytest.approx(CONNECTION_CAP_S, abs=60)


async def test_round_trip_join_leave_remove(store: Store) -> None:
    registry = ConnectionRegistry(store)
    alice = _conn("a=")
    await registry.register(alice)
    assert await registry.get("a=") == alice
    assert await registry.join(alice, "r1")
    assert await registry.join(alice, "r2")
    assert await registry.rooms_of("a=") == {"r1", "r2"}
    assert await registry.members("r1") == {"a="}
    await registry.leave("a=", "r1")
    assert await registry.members("r1") == set()
    assert await registry.rooms() == {"r2"}
    assert await registry.remove("a=") == {"r2"}
    assert await registry.get("a=") is None
    assert await registry.rooms() == set()
    assert await registry.connections() == set()


async def test_a_join_racing_a_disconnect_leaves_no_trace(store: Store) -> None:
    registry = ConnectionRegistry(store)
    await registry.register(_conn("b="))
    await registry.remove("b=")  # DISCONNECT handled on another process first
    assert not await registry.join(_conn("b="), "r1")
    assert await registry.members("r1") == set()
    assert await registry.rooms() == set()


async def test_keepalive_reaches_established_connections_only(
    store: Store, moto_connections: MotoConnections
) -> None:
    registry = ConnectionRegistry(store)
    sender = ApiGatewaySender(
        build_client(moto_connections.endpoint, REGION, pool_size=2), on_gone=registry.remove
    )
    try:
        await registry.register(_conn("old=", age_s=300))
        await registry.register(_conn("new=", age_s=0))  # may still be inside its $connect
        await registry.register(_conn("lost=", age_s=300))
        await store.delete("apigw:conn:lost=")  # expired without a DISCONNECT
        swept = await KeepAlive(store, registry, sender, interval_s=540).sweep()
    finally:
        sender.close()
    assert swept == 1
    assert moto_connections.messages("old=") == [{"type": "keepalive"}]
    assert moto_connections.raw("new=") == b""
    assert moto_connections.raw("lost=") == b""
    assert await registry.connections() == {"old=", "new="}
