"""Redis store (redis-py asyncio): one connection pool, owned by the app's lifespan.

Connection errors become :class:`StoreUnavailable` (503 at the edge); the pool
reconnects on the next call, so a Redis that comes back is used again without a
restart. Idempotent calls meet a connection the restart killed at most once, and then
run again on a fresh one (:mod:`.redis_pool`): no stray 503 minutes after a restart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as redis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from backend.core.storage.redis_pool import idempotent, open_pool
from backend.core.storage.store import StoreUnavailable

log = structlog.get_logger(__name__)

T = TypeVar("T")


def _ms(ttl_s: float | None) -> int | None:
    return None if ttl_s is None else max(1, int(ttl_s * 1000))


class RedisStore:
    name = "redis"

    def __init__(self, client: redis.Redis, *, prefix: str = "pb:") -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "pb:", max_connections: int = 64) -> RedisStore:
        return cls(open_pool(url, max_connections=max_connections), prefix=prefix)

    def key(self, key: str) -> str:
        return self.prefix + key

    async def _call(self, op: Callable[[], Awaitable[T]], *, retry: bool = True) -> T:
        """``retry``: the call is idempotent and may run again on a fresh connection."""
        try:
            return await (idempotent(self.client, op) if retry else op())
        except (RedisConnectionError, RedisTimeoutError, OSError, RedisError) as exc:
            # Redis's own words stay in the log: clients get a fixed message.
            log.warning("store_failed", error=repr(exc)[:300])
            raise StoreUnavailable("the store is unavailable; retry shortly") from exc

    async def get(self, key: str) -> bytes | None:
        value: Any = await self._call(lambda: self.client.get(self.key(key)))
        return None if value is None else bytes(value)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        values: list[Any] = await self._call(lambda: self.client.mget([self.key(k) for k in keys]))
        return [None if v is None else bytes(v) for v in values]

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        await self._call(lambda: self.client.set(self.key(key), value, px=_ms(ttl_s)))

    async def put_if_absent(self, key: str, value: bytes, *, ttl_s: float | None = None) -> bool:
        stored = await self._call(
            lambda: self.client.set(self.key(key), value, px=_ms(ttl_s), nx=True), retry=False
        )
        return bool(stored)

    async def delete(self, key: str) -> bool:
        # Not retried: a second run after a lost reply would answer False.
        return bool(await self._call(lambda: self.client.delete(self.key(key)), retry=False))

    async def incr(self, key: str, amount: int = 1) -> int:
        return int(await self._call(lambda: self.client.incrby(self.key(key), amount), retry=False))

    async def expire(self, key: str, ttl_s: float) -> bool:
        return bool(await self._call(lambda: self.client.pexpire(self.key(key), _ms(ttl_s) or 1)))

    async def ttl(self, key: str) -> float | None:
        millis = int(await self._call(lambda: self.client.pttl(self.key(key))))
        return None if millis < 0 else millis / 1000

    async def add_members(self, key: str, *members: str, ttl_s: float | None = None) -> None:
        if not members:
            return

        async def add() -> None:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.sadd(self.key(key), *members)
                if ttl_s is not None:
                    pipe.pexpire(self.key(key), _ms(ttl_s) or 1)
                await pipe.execute()

        await self._call(add)

    async def remove_members(self, key: str, *members: str) -> None:
        if members:
            await self._call(lambda: self.client.srem(self.key(key), *members))

    async def members(self, key: str) -> set[str]:
        raw: Any = await self._call(lambda: self.client.smembers(self.key(key)))
        return {m.decode() if isinstance(m, bytes) else str(m) for m in raw}

    async def update_sets(
        self,
        added: list[tuple[str, str]],
        deleted: list[str],
        *,
        ttl_s: float | None = None,
    ) -> None:
        if not added and not deleted:
            return
        ttl_ms = _ms(ttl_s)

        async def update() -> None:
            # One transaction: a key is never left without its TTL, and redis-py's cost
            # per call (a pooled connection, the command's checks) is paid once.
            async with self.client.pipeline(transaction=True) as pipe:
                for key, member in added:
                    pipe.sadd(self.key(key), member)
                    if ttl_ms is not None:
                        pipe.pexpire(self.key(key), ttl_ms)
                if deleted:
                    pipe.delete(*(self.key(key) for key in deleted))
                await pipe.execute()

        await self._call(update)  # idempotent: SADD, PEXPIRE and DEL may run twice

    async def ping(self) -> None:
        await self._call(self.client.ping)

    async def close(self) -> None:
        await self.client.aclose()
