"""The storage seam: what every capability may ask of the session/key-value store."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from backend.core.errors import Unavailable


class StoreUnavailable(Unavailable):
    """The store cannot be reached; callers answer 503 and clients retry."""

    code = "store_unavailable"


@runtime_checkable
class Store(Protocol):
    """Byte values under string keys, with optional TTLs, plus small sets.

    Keys are given without the deployment prefix; backends add it. Every method may
    raise :class:`StoreUnavailable`.
    """

    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: list[str]) -> list[bytes | None]: ...

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None: ...

    async def put_if_absent(self, key: str, value: bytes, *, ttl_s: float | None = None) -> bool:
        """Store only when the key does not exist; True when stored."""
        ...

    async def delete(self, key: str) -> bool: ...

    async def incr(self, key: str, amount: int = 1) -> int: ...

    async def expire(self, key: str, ttl_s: float) -> bool: ...

    async def ttl(self, key: str) -> float | None:
        """Seconds left, None when the key has no TTL or does not exist."""
        ...

    async def add_members(self, key: str, *members: str, ttl_s: float | None = None) -> None: ...

    async def remove_members(self, key: str, *members: str) -> None: ...

    async def members(self, key: str) -> set[str]: ...

    async def update_sets(
        self,
        added: list[tuple[str, str]],
        deleted: list[str],
        *,
        ttl_s: float | None = None,
    ) -> None:
        """``add_members(key, member, ttl_s=ttl_s)`` for each pair of ``added``, then
        ``delete`` each key of ``deleted``, in one round trip (many callers' writes)."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
        ...

    async def close(self) -> None: ...
