"""In-process store: the embedded default for a single process. Expiry is lazy."""

from __future__ import annotations

import time


class MemoryStore:
    name = "memory"

    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}
        self._sets: dict[str, set[str]] = {}
        self._expiry: dict[str, float] = {}

    def _alive(self, key: str) -> bool:
        deadline = self._expiry.get(key)
        if deadline is not None and deadline <= time.monotonic():
            self._values.pop(key, None)
            self._sets.pop(key, None)
            del self._expiry[key]
            return False
        return key in self._values or key in self._sets

    def _set_ttl(self, key: str, ttl_s: float | None) -> None:
        if ttl_s is None:
            self._expiry.pop(key, None)
        else:
            self._expiry[key] = time.monotonic() + ttl_s

    async def get(self, key: str) -> bytes | None:
        return self._values.get(key) if self._alive(key) else None

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        self._values[key] = bytes(value)
        self._set_ttl(key, ttl_s)

    async def put_if_absent(self, key: str, value: bytes, *, ttl_s: float | None = None) -> bool:
        if self._alive(key):
            return False
        await self.put(key, value, ttl_s=ttl_s)
        return True

    async def delete(self, key: str) -> bool:
        existed = self._alive(key)
        self._values.pop(key, None)
        self._sets.pop(key, None)
        self._expiry.pop(key, None)
        return existed

    async def incr(self, key: str, amount: int = 1) -> int:
        current = int(self._values[key]) if self._alive(key) and key in self._values else 0
        current += amount
        self._values[key] = str(current).encode()
        return current

    async def expire(self, key: str, ttl_s: float) -> bool:
        if not self._alive(key):
            return False
        self._set_ttl(key, ttl_s)
        return True

    async def ttl(self, key: str) -> float | None:
        if not self._alive(key) or key not in self._expiry:
            return None
        return max(0.0, self._expiry[key] - time.monotonic())

    async def add_members(self, key: str, *members: str, ttl_s: float | None = None) -> None:
        if not self._alive(key):
            self._sets[key] = set()
            self._expiry.pop(key, None)
        self._sets.setdefault(key, set()).update(members)
        if ttl_s is not None:
            self._set_ttl(key, ttl_s)

    async def remove_members(self, key: str, *members: str) -> None:
        if self._alive(key) and key in self._sets:
            self._sets[key].difference_update(members)
            if not self._sets[key]:
                await self.delete(key)

    async def members(self, key: str) -> set[str]:
        return set(self._sets.get(key, ())) if self._alive(key) else set()

    async def update_sets(
        self,
        added: list[tuple[str, str]],
        deleted: list[str],
        *,
        ttl_s: float | None = None,
    ) -> None:
        for key, member in added:
            await self.add_members(key, member, ttl_s=ttl_s)
        for key in deleted:
            await self.delete(key)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._values.clear()
        self._sets.clear()
        self._expiry.clear()
