"""Which rooms each connection of this process is in, kept in the store for the others.

A process answers ``rooms_of`` for its own connections from memory; another process
(a ``sendMessage`` to a connection it does not hold) reads the store. A reconnect storm
greets thousands of connections at once, and most close soon after: one store call for
each record and one more for each close was a fifth of the service's CPU with Redis
(redis-py's cost per call, not Redis's; docs/benchmarks.md, round 4). The records of the
connections greeted or closed meanwhile are written together, one store call at a time:
in order, so a connection's record is never written after it was deleted.
"""

from __future__ import annotations

import asyncio
import contextlib

from backend.core.storage import Store

MEMBERSHIP_TTL_S = 24 * 3600


def membership_key(connection_id: str) -> str:
    return f"hub:conn:{connection_id}"


class _Batch:
    """The writes handed in while the previous batch was written; one future for all."""

    __slots__ = ("added", "deleted", "done")

    def __init__(self) -> None:
        self.added: list[tuple[str, str]] = []
        self.deleted: list[str] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Retrieved here: every caller may be gone (disconnected) when it fails.
        self.done.add_done_callback(_retrieve)


class MembershipRecords:
    """``hub:conn:<id>``: the rooms of each connection, written in batches."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._next: _Batch | None = None
        self._writer: asyncio.Task[None] | None = None

    async def add(self, connection_id: str, room: str) -> None:
        """Record the room; returns once it is in the store (raises StoreUnavailable)."""
        batch = self._batch()
        batch.added.append((membership_key(connection_id), room))
        await asyncio.shield(batch.done)

    async def drop(self, connection_id: str) -> None:
        """Delete the connection's record (it closed)."""
        batch = self._batch()
        batch.deleted.append(membership_key(connection_id))
        await asyncio.shield(batch.done)

    async def remove(self, connection_id: str, room: str) -> None:
        """The connection left one room (a client's ``leave``: rare, not batched)."""
        await self._store.remove_members(membership_key(connection_id), room)

    async def rooms(self, connection_id: str) -> set[str]:
        return await self._store.members(membership_key(connection_id))

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._next is not None:
            self._next.done.cancel()
            self._next = None

    def _batch(self) -> _Batch:
        if self._next is None:
            self._next = _Batch()
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write())
        return self._next

    async def _write(self) -> None:
        """Write batches, one at a time, until none is waiting."""
        batch: _Batch | None = None
        try:
            await asyncio.sleep(0)  # the callers of this loop turn join the first batch
            while self._next is not None:
                batch, self._next = self._next, None
                try:
                    await self._store.update_sets(
                        batch.added, batch.deleted, ttl_s=MEMBERSHIP_TTL_S
                    )
                except Exception as exc:
                    batch.done.set_exception(exc)
                else:
                    batch.done.set_result(None)
        except asyncio.CancelledError:
            if batch is not None and not batch.done.done():
                batch.done.cancel()
            raise
        finally:
            self._writer = None


def _retrieve(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()
