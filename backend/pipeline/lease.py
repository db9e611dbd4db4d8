"""A run's lease: which worker runs a session right now, kept alive by that worker.

``SET NX PX`` takes it, a compare-and-extend keeps it, a compare-and-delete gives it
back. A redelivered job whose lease is alive belongs to a live worker and is left alone.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    def __init__(self, client: redis.Redis, key: str, holder: str, *, ttl_s: float) -> None:
        self._client = client
        self.key = key
        self.holder = holder
        self._ttl_ms = max(100, int(ttl_s * 1000))
        self._extend: Any = client.register_script(_EXTEND)
        self._release: Any = client.register_script(_RELEASE)

    async def acquire(self) -> bool:
        return bool(await self._client.set(self.key, self.holder, nx=True, px=self._ttl_ms))

    async def extend(self) -> bool:
        """False when the lease is someone else's now (it expired and was taken)."""
        return bool(await self._extend(keys=[self.key], args=[self.holder, self._ttl_ms]))

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.holder])

    async def holder_now(self) -> str | None:
        value = await self._client.get(self.key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)
