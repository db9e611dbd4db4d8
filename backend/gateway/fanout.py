"""Fleet-wide delivery of room events to API Gateway connections, each exactly once.

Any process may have registered a connection and any process may see an event
published, so neither "the process that owns the connection" nor "every process" can
post: the first breaks when that process restarts while API Gateway keeps the socket,
the second posts every event N times. Instead, for each room with API Gateway members,
ONE process of the fleet holds a lease (``apigw:pump:{room}`` in the store, renewed
while it lives) and runs that room's pump:

- it follows the room's live events (:class:`RoomFeed`, the status hub's bus), and
  when the room is quiet it catches up connections that joined (``resume`` from a
  ``last_seq``) or were throttled, from the room's history;
- for each event it reads the room's members and their cursors from the registry
  (one round trip each) and posts the event to every member whose cursor is below it,
  first filling any gap from the room's history, then advances the cursor;
- posts to different connections run concurrently, one connection's in order.

The cursor is written by whoever posted the snapshot (``joinRoom``/``resume``) before
the connection joins the room's set, so the pump never repeats what the snapshot
covered and, with the catch-up pass a new pump makes, never skips what came between.
A connection that API Gateway keeps throttling stops at its cursor and is caught up
from history on the next event. If the leaseholder dies, another process takes the
lease within ``lease_s`` and carries on from the cursors.

A post and its cursor write cannot be one transaction: when Redis dies between them,
the cursor says less than what went out. The process keeps such unsaved cursors
(:class:`UnsavedCursors`) and its next pump of the room writes them before it reads
any, so a Redis restart never makes it post an event twice. (If Redis stays away
longer than the lease and another process takes the room over, that process cannot
know; it may repeat the events posted in the last moment before the outage.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

import structlog

from backend.core.errors import DomainError
from backend.core.storage import Store
from backend.gateway.apigw_sender import ApiGatewaySender, FrameTooLarge, PostOutcome
from backend.gateway.registry import ConnectionRegistry

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class FeedEvent:
    seq: int
    text: str  # the event exactly as a native WebSocket client receives it


class RoomFeed(Protocol):
    """What the fan-out needs from the status hub's event bus and history."""

    def follow(self, room: str) -> AbstractAsyncContextManager[AsyncIterator[FeedEvent]]:
        """Subscribed on entry: the room's live events from then on, in seq order."""
        ...

    async def since(self, room: str, after_seq: int) -> list[FeedEvent]:
        """The room's stored events after ``after_seq``, in seq order."""
        ...


IN_FLIGHT_POST_S = 5.0  # how long a stopping pump waits to learn a post's outcome


class UnsavedCursors:
    """Cursors this process posted up to but could not write (the store was away)."""

    def __init__(self) -> None:
        self._seqs: dict[tuple[str, str], int] = {}

    def keep(self, room: str, connection_id: str, seq: int) -> None:
        key = (room, connection_id)
        self._seqs[key] = max(seq, self._seqs.get(key, seq))

    async def save(self, room: str, registry: ConnectionRegistry) -> None:
        """Write the room's unsaved cursors (raises StoreUnavailable while it is away)."""
        for (kept_room, cid), seq in list(self._seqs.items()):
            if kept_room != room:
                continue
            if await registry.get(cid) is not None:
                cursors = await registry.cursors(room, [cid])
                if cursors[0] is not None and cursors[0] < seq:
                    await registry.advance(room, cid, seq)
            del self._seqs[(room, cid)]


def _lease_key(room: str) -> str:
    return f"apigw:pump:{room}"


class RoomPump:
    """Posts one room's events to its API Gateway members (on the leaseholder only)."""

    def __init__(
        self,
        room: str,
        feed: RoomFeed,
        registry: ConnectionRegistry,
        sender: ApiGatewaySender,
        *,
        retry_s: float = 1.0,
        unsaved: UnsavedCursors | None = None,
    ) -> None:
        self.room = room
        self._retry_s = retry_s
        self._unsaved = unsaved if unsaved is not None else UnsavedCursors()
        self._lagging: set[str] = set()  # throttled connections waiting for a catch-up
        self._feed = feed
        self._registry = registry
        self._sender = sender

    async def run(self, started: asyncio.Event | None = None) -> None:
        await self._unsaved.save(self.room, self._registry)  # before any cursor is read
        async with self._feed.follow(self.room) as live:
            if started is not None:
                started.set()
            await self.deliver(None)  # what was published before we subscribed
            upcoming: asyncio.Future[FeedEvent] | None = None
            try:
                while True:
                    upcoming = upcoming or asyncio.ensure_future(anext(live))
                    done, _ = await asyncio.wait({upcoming}, timeout=self._retry_s)
                    if not done:  # quiet room: catch up newcomers and throttled ones
                        if self._lagging or await self._registry.take_nudge(self.room):
                            await self.deliver(None)
                        continue
                    event, upcoming = upcoming.result(), None
                    await self.deliver(event)
            except StopAsyncIteration:
                return
            finally:
                if upcoming is not None:
                    upcoming.cancel()

    async def deliver(self, event: FeedEvent | None) -> None:
        """Bring every member up to ``event`` (or up to the history's end when None)."""
        members = sorted(await self._registry.members(self.room))
        if not members:
            return
        cursors = await self._registry.cursors(self.room, members)
        behind = {
            cid: cursor
            for cid, cursor in zip(members, cursors, strict=True)
            if cursor is not None and (event is None or cursor < event.seq)
        }
        if not behind:
            return
        lowest = min(behind.values())
        needs_history = event is None or lowest < event.seq - 1
        backlog = await self._feed.since(self.room, lowest) if needs_history else []
        if event is not None:
            backlog = [e for e in backlog if e.seq < event.seq] + [event]
        async with asyncio.TaskGroup() as group:
            for cid, cursor in behind.items():
                pending = [e for e in backlog if e.seq > cursor]
                if pending:
                    group.create_task(self._post_in_order(cid, pending))

    async def _post_in_order(self, connection_id: str, events: list[FeedEvent]) -> None:
        delivered = None
        self._lagging.discard(connection_id)
        try:
            for event in events:
                try:
                    outcome = await self._post(connection_id, event)
                except FrameTooLarge as exc:  # publish should have refused it; never wedge
                    log.error(
                        "apigw_event_too_large", room=self.room, seq=event.seq, error=exc.message
                    )
                    outcome = PostOutcome.DELIVERED
                except _Stopped as stopped:  # cancelled: keep what did go out, then stop
                    if stopped.outcome is PostOutcome.DELIVERED:
                        delivered = event.seq
                    raise asyncio.CancelledError from None
                if outcome is PostOutcome.THROTTLED:
                    self._lagging.add(connection_id)  # caught up from history later
                if outcome is not PostOutcome.DELIVERED:
                    break
                delivered = event.seq
        finally:
            # Even when the pump is stopped (lease lost, process ending): the cursor must
            # say what was posted, or the next leaseholder posts it again.
            if delivered is not None:
                try:
                    await self._registry.advance(self.room, connection_id, delivered)
                except DomainError:
                    self._unsaved.keep(self.room, connection_id, delivered)
                    raise

    async def _post(self, connection_id: str, event: FeedEvent) -> PostOutcome:
        """One post; if cancelled while it is in flight (a thread), learn how it ended."""
        post = asyncio.ensure_future(self._sender.post(connection_id, event.text.encode()))
        try:
            return await asyncio.shield(post)
        except asyncio.CancelledError:
            outcome = None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(IN_FLIGHT_POST_S):
                    outcome = await post
            raise _Stopped(outcome) from None


class _Stopped(Exception):
    """The pump was cancelled during a post; ``outcome`` is how that post ended."""

    def __init__(self, outcome: PostOutcome | None) -> None:
        super().__init__("cancelled during a post")
        self.outcome = outcome


class Fanout:
    """Every process runs one: it takes the leases of rooms nobody pumps and runs them."""

    def __init__(
        self,
        store: Store,
        registry: ConnectionRegistry,
        sender: ApiGatewaySender,
        feed: RoomFeed,
        *,
        lease_s: float = 10.0,
    ) -> None:
        self._store = store
        self._registry = registry
        self._sender = sender
        self._feed = feed
        self._lease_s = lease_s
        self._owner = f"{os.getpid()}:{id(self)}".encode()
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._unsaved = UnsavedCursors()
        self._wake = asyncio.Event()
        self._closed = False

    def close(self) -> None:
        """Stop at the next turn. Cancellation alone is not enough: a Redis call in
        progress can swallow it (redis-py), leaving the loop running."""
        self._closed = True
        self._wake.set()

    def wake(self) -> None:
        """A connection joined a room here: look for rooms to pump now, not at the tick."""
        self._wake.set()

    async def run(self) -> None:
        try:
            while not self._closed:
                try:
                    await self.tick()
                except DomainError as exc:  # store unreachable: keep pumps, retry soon
                    log.warning("apigw_fanout_tick_failed", error=exc.message)
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._lease_s / 3):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            await self._stop_all()

    async def tick(self) -> None:
        rooms = await self._registry.rooms()
        for room in list(self._pumps):
            if self._pumps[room].done() or room not in rooms or not await self._renew(room):
                await self._stop(room)
        for room in rooms - set(self._pumps):
            if not await self._registry.members(room):
                continue
            if await self._store.put_if_absent(_lease_key(room), self._owner, ttl_s=self._lease_s):
                await self._start(room)

    @property
    def pumping(self) -> set[str]:
        return set(self._pumps)

    async def _renew(self, room: str) -> bool:
        if await self._store.get(_lease_key(room)) != self._owner:
            return False
        return await self._store.expire(_lease_key(room), self._lease_s)

    async def _start(self, room: str) -> None:
        started = asyncio.Event()
        pump = RoomPump(room, self._feed, self._registry, self._sender, unsaved=self._unsaved)
        task = asyncio.create_task(pump.run(started), name=f"apigw-pump:{room}")
        self._pumps[room] = task  # owned here: _stop cancels and awaits it
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        log.info("apigw_pump_started", room=room)

    async def _stop(self, room: str) -> None:
        task = self._pumps.pop(room)
        task.cancel()
        # wait, not await: the pump's cancellation is expected, ours must not be swallowed
        await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            # the pump died (store down...): the next tick restarts it
            log.error("apigw_pump_failed", room=room, error=repr(task.exception()))
        with contextlib.suppress(DomainError):
            if await self._store.get(_lease_key(room)) == self._owner:
                await self._store.delete(_lease_key(room))

    async def _stop_all(self) -> None:
        for room in list(self._pumps):
            await self._stop(room)
