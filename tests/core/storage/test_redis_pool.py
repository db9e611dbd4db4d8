"""The pool after a Redis restart: idle connections the restart killed are never a 503.

Before: redis-py 8's pool skipped its closed-connection check (maintenance notifications
on "auto") and had no retry, so each pooled connection failed once, "Connection closed
by server", the first time it was used after the restart, minutes later or not.
"""

from __future__ import annotations

import asyncio

import pytest

from backend.core.storage import Store, open_store
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis


async def _fill_pool(store: Store, n: int) -> None:
    """Use ``n`` connections at once, so that ``n`` sit idle in the pool afterwards."""
    await asyncio.gather(*(store.members(f"set-{i}") for i in range(n)))


async def test_reads_after_a_restart_never_meet_a_dead_connection(
    private_redis: RedisServer,
) -> None:
    store = open_store(private_redis.url, prefix="pool:")
    try:
        await store.put("k", b"kept")
        await _fill_pool(store, 8)
        private_redis.shutdown()  # nothing uses the pool while Redis is away
        private_redis.start()
        for _ in range(3):  # every idle connection is dead; every read still answers
            values = await asyncio.gather(*(store.get("k") for _ in range(8)))
            assert values == [b"kept"] * 8
    finally:
        await store.close()


@pytest.mark.parametrize("kind", ["normal", "pubsub"])
async def test_killed_connections_are_replaced_without_an_error(
    private_redis: RedisServer, kind: str
) -> None:
    store = open_store(private_redis.url, prefix="pool:")
    try:
        await store.put("k", b"v")
        await _fill_pool(store, 8)
        private_redis.kill_clients(kind)
        assert await asyncio.gather(*(store.get("k") for _ in range(8))) == [b"v"] * 8
        assert await store.members("set-0") == set()
        await store.put("k", b"w")  # a plain SET is idempotent: retried when it must be
        assert await store.get("k") == b"w"
    finally:
        await store.close()
