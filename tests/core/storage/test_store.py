"""One suite, every backend: the in-memory store and a real Redis behave the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from backend.core.storage import Store, StoreUnavailable, open_store
from tests.support.redis_server import RedisServer


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, redis_url: str, redis_prefix: str
) -> AsyncIterator[Store]:
    backend = open_store(None if request.param == "memory" else redis_url, prefix=redis_prefix)
    assert backend.name == request.param
    yield backend
    await backend.close()


async def test_values_round_trip_and_delete(store: Store) -> None:
    assert await store.get("missing") is None
    await store.put("a", b"\x00binary\xff")
    assert await store.get("a") == b"\x00binary\xff"
    assert await store.get_many(["a", "missing"]) == [b"\x00binary\xff", None]
    assert await store.delete("a") is True
    assert await store.delete("a") is False
    assert await store.get("a") is None


async def test_put_if_absent_only_stores_once(store: Store) -> None:
    assert await store.put_if_absent("owner", b"alice") is True
    assert await store.put_if_absent("owner", b"mallory") is False
    assert await store.get("owner") == b"alice"


async def test_values_expire(store: Store) -> None:
    await store.put("short", b"x", ttl_s=0.15)
    remaining = await store.ttl("short")
    assert remaining is not None
    assert 0 < remaining <= 0.15
    await asyncio.sleep(0.3)
    assert await store.get("short") is None
    assert await store.ttl("short") is None


async def test_expire_extends_an_existing_key_only(store: Store) -> None:
    await store.put("k", b"v")
    assert await store.ttl("k") is None
    assert await store.expire("k", 60) is True
    remaining = await store.ttl("k")
    assert remaining is not None
    assert remaining > 50
    assert await store.expire("absent", 60) is False


async def test_incr_counts_atomically(store: Store) -> None:
    results = await asyncio.gather(*(store.incr("n") for _ in range(50)))
    assert sorted(results) == list(range(1, 51))
    assert await store.incr("n", 10) == 60


async def test_sets_add_remove_and_expire(store: Store) -> None:
    assert await store.members("rooms") == set()
    await store.add_members("rooms", "a", "b", ttl_s=0.2)
    await store.add_members("rooms", "c")
    assert await store.members("rooms") == {"a", "b", "c"}
    await store.remove_members("rooms", "b")
    assert await store.members("rooms") == {"a", "c"}
    await asyncio.sleep(0.35)
    assert await store.members("rooms") == set()


async def test_update_sets_adds_with_a_ttl_then_deletes_in_one_call(store: Store) -> None:
    await store.add_members("conn:1", "old")
    await store.update_sets(
        [("conn:2", "r1"), ("conn:2", "r2"), ("conn:3", "r1")], ["conn:1"], ttl_s=60
    )
    assert await store.members("conn:2") == {"r1", "r2"}
    assert await store.members("conn:3") == {"r1"}
    assert await store.members("conn:1") == set()
    ttl = await store.ttl("conn:2")
    assert ttl is not None
    assert 0 < ttl <= 60


async def test_ping_answers(store: Store) -> None:
    await store.ping()


@pytest.mark.redis
async def test_redis_outage_is_503_material_and_recovers(private_redis: RedisServer) -> None:
    store = open_store(private_redis.url, prefix="outage:")
    try:
        await store.put("k", b"before")
        private_redis.stop()
        with pytest.raises(StoreUnavailable) as caught:
            await store.get("k")
        assert caught.value.code == "store_unavailable"
        with pytest.raises(StoreUnavailable):
            await store.ping()
        private_redis.start()  # AOF persistence: the value survives the restart
        assert await store.get("k") == b"before"
    finally:
        await store.close()
