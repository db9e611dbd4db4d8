"""Session and key-value storage: one Protocol, an in-memory and a Redis backend.

The backend is chosen by URL (``REDIS_URL``) and imported only when chosen.
"""

from backend.app.storage.base import Store, StoreUnavailable, open_store

__all__ = ["Store", "StoreUnavailable", "open_store"]
