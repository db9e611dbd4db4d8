"""Rooms, joins, resume and client messages: the transport-agnostic heart of the hub.

A transport's owner calls :meth:`Hub.open`, :meth:`Hub.greet`, :meth:`Hub.handle_frame`
for each client frame, stops reading when the connection fails (``Connection.on_fail``),
and calls :meth:`Hub.disconnect` at the end, which stops the connection's writer
(:meth:`Hub._write`, started by :meth:`open`). The bus calls
:meth:`on_event`/:meth:`on_message`.

A live event goes to each member one of two ways. When the member's writer is idle (it
waits with nothing queued and nothing in flight), the event is the very next one its
cursor needs and its transport takes a write at once, :meth:`Hub._write_now` writes it
from the fan-out itself, as ``websockets.broadcast`` does: no task woken, nothing
allocated that outlives the call. Otherwise it is queued and the writer sends it in
order with whatever else is there (replies, snapshots, fills), waiting on flow control;
a full queue closes the connection with 4008.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import structlog

from backend.core.auth import Principal
from backend.core.errors import DomainError
from backend.core.storage import Store
from backend.hub import frames, protocol
from backend.hub.bus import EventBus, Published
from backend.hub.connection import Connection, Cursor, Sync, Transport
from backend.hub.gc_bursts import CollectorBursts
from backend.hub.hub_metrics import HubMetrics
from backend.hub.memberships import MembershipRecords
from backend.hub.replay import SharedReads, catch_up

log = structlog.get_logger(__name__)

# Connections greeted at once (access check, membership, following the room). In a
# reconnect storm the rest wait their turn here instead of all holding a store call whose
# reply the busy loop reads late enough to time it out.
GREETING_CONCURRENCY = 64


class SessionAccess(Protocol):
    async def check(self, principal: Principal, session_id: str) -> None:
        """Raise Forbidden or NotFound unless the principal may follow the session."""


class Hub:
    def __init__(
        self,
        bus: EventBus,
        store: Store,
        access: SessionAccess,
        metrics: HubMetrics,
        *,
        queue_messages: int = 1000,
        queue_bytes: int = 4 << 20,
        gc_bursts: CollectorBursts | None = None,
    ) -> None:
        self.bus = bus
        self._memberships = MembershipRecords(store)
        self._access = access
        self._metrics = metrics
        self._queue_messages = queue_messages
        self._queue_bytes = queue_bytes
        self._connections: dict[str, Connection] = {}
        self._rooms: dict[str, set[Connection]] = {}
        self._ids = itertools.count(1)
        self._watchers: dict[str, set[asyncio.Queue[Published]]] = {}
        # A room's members that need its history at the same time share one read.
        self._reads = SharedReads(bus)
        self._greeting = asyncio.Semaphore(GREETING_CONCURRENCY)
        # A room being followed: the members greeted meanwhile wait for the same follow.
        self._following: dict[str, asyncio.Future[None]] = {}
        self._gc_bursts = gc_bursts

    async def start(self) -> None:
        await self.bus.start(self)
        if self._gc_bursts is not None:
            self._gc_bursts.expect()  # a new process: its clients may all come back at once

    async def close(self) -> None:
        for conn in list(self._connections.values()):
            conn.fail(1001, "server shutting down")
        if self._gc_bursts is not None:
            self._gc_bursts.close()
        await self._memberships.close()
        await self.bus.close()

    @contextlib.asynccontextmanager
    async def watch(self, room: str) -> AsyncIterator[asyncio.Queue[Published]]:
        """A queue of the room's live events on this process (for API Gateway's fan-out)."""
        queue: asyncio.Queue[Published] = asyncio.Queue(maxsize=self._queue_messages)
        watchers = self._watchers.setdefault(room, set())
        if not watchers and room not in self._rooms:
            await self.bus.follow(room)
        watchers.add(queue)
        try:
            yield queue
        finally:
            watchers.discard(queue)
            if not watchers:
                del self._watchers[room]
                if room not in self._rooms:
                    await self.bus.unfollow(room)

    # -- a connection's life ---------------------------------------------------------
    def open(self, principal: Principal, transport: Transport) -> Connection:
        conn = Connection(
            f"{self.bus.node_id}.{next(self._ids)}",
            principal,
            transport,
            max_messages=self._queue_messages,
            max_bytes=self._queue_bytes,
        )
        self._connections[conn.id] = conn
        self._metrics.connections.labels(transport.kind).inc()
        if self._gc_bursts is not None:
            self._gc_bursts.opened()
        conn.start_writer(self._write)
        return conn

    async def greet(
        self,
        conn: Connection,
        session_id: str | None,
        last_seq: int | None = None,
        epoch: str | None = None,
    ) -> None:
        """The first messages; ``session_id`` is joined without checking access again
        (its owner checked it before accepting the connection)."""
        conn.offer(protocol.dumps(protocol.connected(conn.id, session_id)))
        if session_id is not None:
            async with self._greeting:
                await self.join_room(conn, session_id, last_seq, epoch, reply=False, checked=True)

    async def disconnect(self, conn: Connection) -> None:
        await conn.stop_writer()
        if self._connections.pop(conn.id, None) is None:
            return
        self._metrics.connections.labels(conn.transport.kind).dec()
        for room in conn.rooms:
            await self.leave_room(conn, room)
        try:
            await self._memberships.drop(conn.id)
        except DomainError:
            log.warning("membership_cleanup_failed", connection_id=conn.id)

    async def publish(self, session_id: str, fields: dict[str, Any]) -> Published:
        event = await self.bus.publish(session_id, fields)
        self._metrics.published.inc()
        return event

    @property
    def access(self) -> SessionAccess:
        return self._access

    async def check_access(self, principal: Principal, session_id: str) -> None:
        async with self._greeting:
            await self._access.check(principal, session_id)

    # -- client frames ---------------------------------------------------------------
    async def handle_frame(
        self, conn: Connection, text: str | bytes, messaging: frames.Messaging
    ) -> None:
        await frames.handle_frame(LocalMember(self, conn), text, messaging)

    async def join_room(
        self,
        conn: Connection,
        room: str,
        last_seq: int | None,
        epoch: str | None,
        request_id: Any = None,
        *,
        reply: bool = True,
        checked: bool = False,
    ) -> None:
        if room not in conn.cursors:
            if not checked:
                await self._access.check(conn.principal, room)
            await self._memberships.add(conn.id, room)
            if not self._rooms.get(room) and room not in self._watchers:
                await self._follow(room)
            self._rooms.setdefault(room, set()).add(conn)
            conn.cursors[room] = Cursor(epoch="", seq=-1)  # set when the Sync is sent
            self._metrics.rooms.set(len(self._rooms))
        if reply:
            conn.offer(
                protocol.dumps(
                    protocol.with_request_id({"type": "joined", "room": room}, request_id)
                )
            )
        conn.offer(Sync(room, last_seq, epoch, request_id))

    async def leave_room(self, conn: Connection, room: str) -> None:
        conn.cursors.pop(room, None)
        members = self._rooms.get(room)
        if members is not None:
            members.discard(conn)
            if not members:
                del self._rooms[room]
                if room not in self._watchers:
                    await self.bus.unfollow(room)
        self._metrics.rooms.set(len(self._rooms))
        if conn.id in self._connections:
            await self._memberships.remove(conn.id, room)

    async def broadcast(self, room: str, sender: str, message: Any) -> None:
        """To every other member of the room this hub holds, on every process."""
        await self.bus.send({"room": room, "from": sender, "message": message})

    async def rooms_of(self, connection_id: str) -> set[str]:
        """The rooms of a connection held by any process's hub (empty: none holds it)."""
        local = self._connections.get(connection_id)
        return local.rooms if local else await self._memberships.rooms(connection_id)

    async def send_direct(self, target: str, sender: str, message: Any) -> None:
        """To a connection some process's hub holds (see messaging.RoomMessaging)."""
        await self.bus.send({"target": target, "from": sender, "message": message})

    async def _follow(self, room: str) -> None:
        """Follow a room on the bus once, however many of its members are greeted at once
        (each followed it before: a subscription and a head read per member in a storm)."""
        following = self._following.get(room)
        if following is None:
            following = asyncio.ensure_future(self.bus.follow(room))
            self._following[room] = following
            following.add_done_callback(functools.partial(self._followed, room))
        await asyncio.shield(following)

    def _followed(self, room: str, following: asyncio.Future[None]) -> None:
        del self._following[room]
        if not following.cancelled():
            following.exception()  # raised to every member waiting; retrieved for none left

    # -- live traffic from the bus -----------------------------------------------------
    def on_event(self, event: Published) -> None:
        self._reads.invalidate(event.session_id)  # a read started before may lack it
        written = 0
        for conn in tuple(self._rooms.get(event.session_id, ())):
            if self._write_now(conn, event):
                written += 1
            elif not conn.offer(event):
                self._metrics.slow_closes.inc()
        if written:
            self._count(written, event.published_at)
        for queue in tuple(self._watchers.get(event.session_id, ())):
            with contextlib.suppress(asyncio.QueueFull):  # the fan-out catches up by cursor
                queue.put_nowait(event)

    def on_message(self, envelope: dict[str, Any]) -> None:
        sender = str(envelope.get("from"))
        target = envelope.get("target")
        if target is not None:
            conn = self._connections.get(target)
            if conn is not None:
                conn.offer(protocol.dumps(protocol.direct_message(sender, envelope["message"])))
            return
        room = str(envelope.get("room"))
        text = protocol.dumps(protocol.room_message(sender, room, envelope.get("message")))
        for conn in tuple(self._rooms.get(room, ())):
            if conn.id != sender:
                conn.offer(text)

    # -- the writer ------------------------------------------------------------------
    async def _write(self, conn: Connection) -> None:
        """The connection's writer: send its queue in order until the connection fails.

        Whatever is ready is taken at once: the live events and replies among it go out in
        one ``send_texts``; a snapshot or a gap fill flushes what came before it first. A
        send or a history read that fails fails the connection (its owner closes it).
        """
        send = conn.transport.send_texts
        try:
            while True:
                batch = conn.take()
                if not batch:
                    if conn.close_code is not None:
                        return  # failed: its owner closes it
                    await conn.wait()
                    continue
                texts: list[str] = []
                admitted, oldest = 0, 0.0  # counted once per batch: see _count
                for item in batch:
                    if isinstance(item, str):
                        texts.append(item)
                    elif isinstance(item, Published):
                        if self._admit(conn, item):
                            texts.append(item.text)
                            oldest = oldest or item.published_at
                            admitted += 1
                        elif self._needs_fill(conn, item):
                            if texts:
                                await send(texts)
                                texts = []
                            await self._fill(conn, item)
                    else:
                        if texts:
                            await send(texts)
                            texts = []
                        await self._sync(conn, item.room, item.last_seq, item.epoch)
                if texts:
                    await send(texts)
                del texts  # not kept across the wait: one object less for the collector
                if admitted:
                    self._count(admitted, oldest)
        except Exception as exc:
            log.warning("hub_writer_failed", connection_id=conn.id, error=repr(exc)[:300])
            conn.fail_after(exc)

    def _write_now(self, conn: Connection, event: Published) -> bool:
        """Write ``event`` straight to the socket, from the fan-out, when nothing can be
        ahead of it: the writer idle (nothing queued, no send, snapshot or fill in flight),
        the event the very next one the client needs, and the transport taking a write at
        once (not paused: flow control and the 4008 bound stay the queue's). Anything else
        takes the queue, where the writer decides. No task is woken and nothing is kept:
        the wake-up and the objects a queued delivery costs every member."""
        if not conn.idle:
            return False
        cursor = conn.cursors.get(event.session_id)
        if cursor is None or not _is_next(cursor, event):
            return False
        try:
            if not conn.transport.write_now(event.text):
                return False
        except Exception:  # nothing written: the writer meets the same error and fails it
            return False
        cursor.epoch, cursor.seq = event.epoch, event.seq
        return True

    def _admit(self, conn: Connection, event: Published) -> bool:
        """True (and the cursor moved) when ``event`` is the next one this client needs."""
        cursor = conn.cursors.get(event.session_id)
        if cursor is None or not _is_next(cursor, event):
            return False
        cursor.epoch, cursor.seq = event.epoch, event.seq
        return True

    def _count(self, sent: int, oldest_published_at: float) -> None:
        """Once per writer's batch, and once per event for the members it was written to
        directly, not per delivery: a histogram's observe costs a few µs of CPU, as much
        as writing the event. The lag observed is the batch's oldest event's."""
        self._metrics.delivered.inc(sent)
        self._metrics.lag.observe(max(0.0, time.time() - oldest_published_at))

    @staticmethod
    def _needs_fill(conn: Connection, event: Published) -> bool:
        """Not admitted and not already sent: history was lost (new epoch) or missed."""
        cursor = conn.cursors.get(event.session_id)
        return cursor is not None and (event.seq > cursor.seq or event.epoch != cursor.epoch)

    async def _fill(self, conn: Connection, event: Published) -> None:
        """Fill from history up to ``event`` (a read shared with the room's other members
        may have started just before it: then once more, on a read of its own)."""
        room = event.session_id
        for _ in range(2):
            await self._sync(conn, room, *_resume_point(conn, room), quiet=True)
            if not self._needs_fill(conn, event):
                return
        # Still behind after a fresh read: only an event from a newer epoch than the
        # store holds now (it lost the history again meanwhile); the next event fills.

    async def _sync(
        self,
        conn: Connection,
        room: str,
        last_seq: int | None,
        epoch: str | None,
        *,
        quiet: bool = False,
    ) -> None:
        """Snapshot then replay (or, ``quiet``, only the missed events when it can)."""
        if room not in conn.cursors:
            return
        send = conn.transport
        done = await catch_up(
            self._reads,
            room,
            last_seq,
            epoch,
            send.send_text,
            quiet=quiet,
            send_many=send.send_texts,
        )
        if not quiet:
            self._metrics.resumes.labels(str(done.recovered).lower()).inc()
        if room in conn.cursors:  # not left while the history was read
            conn.cursors[room] = Cursor(done.epoch, done.delivered_seq)


def _is_next(cursor: Cursor, event: Published) -> bool:
    """Whether ``event`` is the one the cursor needs next: the following seq of its epoch,
    or the first event of a room it was shown empty (seq 0). The room's first event comes
    with the store's real epoch, not the empty room's; admitting it needs no history,
    where every member ran a fill of its own (a read shared, but a chain of waits per
    member). A cursor still waiting for its snapshot (seq -1) admits nothing."""
    return (
        bool(event.text)
        and event.seq == cursor.seq + 1
        and (event.epoch == cursor.epoch or event.seq == 1)
    )


def _resume_point(conn: Connection, room: str) -> tuple[int | None, str | None]:
    cursor = conn.cursors[room]
    return cursor.seq, cursor.epoch


class LocalMember:
    """A connection this process holds, as a member of the hub's rooms (frames.Member)."""

    def __init__(self, hub: Hub, conn: Connection) -> None:
        self._hub = hub
        self._conn = conn

    @property
    def member_id(self) -> str:
        return self._conn.id

    @property
    def principal(self) -> Principal:
        return self._conn.principal

    async def rooms(self) -> set[str]:
        return self._conn.rooms

    async def join(
        self, room: str, last_seq: int | None, epoch: str | None, request_id: Any, *, resume: bool
    ) -> None:
        if resume and room not in self._conn.cursors:
            await self._hub.check_access(self._conn.principal, room)
        await self._hub.join_room(self._conn, room, last_seq, epoch, request_id, reply=not resume)

    async def leave(self, room: str) -> None:
        await self._hub.leave_room(self._conn, room)

    async def send(self, message: dict[str, Any]) -> None:
        self._conn.offer(protocol.dumps(message))
