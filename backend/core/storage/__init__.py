"""Session and key-value storage: one Protocol, an in-memory and a Redis backend.

The backend is chosen by URL (``REDIS_URL``) and imported only when chosen.
"""

from backend.core.storage.store import Store, StoreUnavailable

__all__ = ["Store", "StoreUnavailable", "open_store"]


def open_store(redis_url: str | None, *, prefix: str = "pb:", max_connections: int = 64) -> Store:
    """The in-memory store without a URL, the Redis store with one."""
    if not redis_url:
        from backend.core.storage.memory import MemoryStore

        return MemoryStore()
    from backend.core.storage.redis_store import RedisStore

    return RedisStore.from_url(redis_url, prefix=prefix, max_connections=max_connections)
