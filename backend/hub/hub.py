"""Rooms, joins, resume and client messages: the transport-agnostic heart of the hub.

A transport's owner calls :meth:`Hub.open`, :meth:`Hub.greet`, :meth:`Hub.handle_frame`
for each client frame, runs :meth:`Hub.pump` as the connection's only writer, and calls
:meth:`Hub.disconnect` at the end. The bus calls :meth:`on_event`/:meth:`on_message`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import structlog

from backend.core.auth import Principal
from backend.core.errors import DomainError
from backend.core.storage import Store
from backend.hub import protocol
from backend.hub.bus import EventBus, Published
from backend.hub.connection import Connection, Cursor, Sync, Transport
from backend.hub.hub_metrics import HubMetrics
from backend.hub.protocol import Action, Frame, ProtocolError
from backend.hub.replay import catch_up

log = structlog.get_logger(__name__)

MEMBERSHIP_TTL_S = 24 * 3600


class SessionAccess(Protocol):
    async def check(self, principal: Principal, session_id: str) -> None:
        """Raise Forbidden or NotFound unless the principal may follow the session."""


class ExternalMembers(Protocol):
    """Room members the hub does not hold itself: API Gateway connections."""

    async def rooms_of(self, connection_id: str) -> set[str]: ...

    async def broadcast(self, room: str, sender: str, message: Any) -> None: ...

    async def send(self, target: str, sender: str, message: Any) -> None: ...


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
    ) -> None:
        self.bus = bus
        self._store = store
        self._access = access
        self._metrics = metrics
        self._queue_messages = queue_messages
        self._queue_bytes = queue_bytes
        self._connections: dict[str, Connection] = {}
        self._rooms: dict[str, set[Connection]] = {}
        self._ids = itertools.count(1)
        self._watchers: dict[str, set[asyncio.Queue[Published]]] = {}
        self.external: ExternalMembers | None = None

    async def start(self) -> None:
        await self.bus.start(self)

    async def close(self) -> None:
        for conn in list(self._connections.values()):
            conn.fail(1001, "server shutting down")
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
        return conn

    async def greet(
        self,
        conn: Connection,
        session_id: str | None,
        last_seq: int | None = None,
        epoch: str | None = None,
    ) -> None:
        conn.offer(protocol.dumps(protocol.connected(conn.id, session_id)))
        if session_id is not None:
            await self._join(conn, session_id, last_seq, epoch, reply=False)

    async def disconnect(self, conn: Connection) -> None:
        if self._connections.pop(conn.id, None) is None:
            return
        self._metrics.connections.labels(conn.transport.kind).dec()
        for room in conn.rooms:
            await self._leave_room(conn, room)
        try:
            await self._store.delete(_membership_key(conn.id))
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
        await self._access.check(principal, session_id)

    # -- client frames ---------------------------------------------------------------
    async def handle_frame(self, conn: Connection, text: str | bytes) -> None:
        request_id: Any = None
        try:
            frame = protocol.parse_frame(text)
            request_id = frame.request_id
            reply = await self._dispatch(conn, frame)
        except ProtocolError as exc:  # raised while parsing (its own id) or acting (ours)
            rid = exc.request_id if exc.request_id is not None else request_id
            reply = protocol.error(exc.code, exc.message, rid)
        except DomainError as exc:
            reply = protocol.error(exc.code, exc.message, request_id)
        if reply is not None:
            conn.offer(protocol.dumps(reply))

    async def _dispatch(self, conn: Connection, frame: Frame) -> dict[str, Any] | None:
        rid = frame.request_id
        match frame.action:
            case Action.PING:
                return protocol.with_request_id({"type": "pong"}, rid)
            case Action.JOIN | Action.RESUME:
                assert frame.room is not None
                if frame.action is Action.RESUME and frame.room not in conn.cursors:
                    await self._access.check(conn.principal, frame.room)
                await self._join(
                    conn,
                    frame.room,
                    frame.last_seq,
                    frame.epoch,
                    rid,
                    reply=frame.action is Action.JOIN,
                )
                return None
            case Action.LEAVE:
                assert frame.room is not None
                if frame.room not in conn.cursors:
                    raise ProtocolError("not_in_room", "this connection has not joined that room")
                await self._leave_room(conn, frame.room)
                return protocol.with_request_id({"type": "left", "room": frame.room}, rid)
            case Action.BROADCAST:
                return await self._broadcast(conn, frame)
            case Action.SEND:
                return await self._send(conn, frame)
        return None

    async def _join(
        self,
        conn: Connection,
        room: str,
        last_seq: int | None,
        epoch: str | None,
        request_id: Any = None,
        *,
        reply: bool = True,
    ) -> None:
        if room not in conn.cursors:
            await self._access.check(conn.principal, room)
            await self._store.add_members(_membership_key(conn.id), room, ttl_s=MEMBERSHIP_TTL_S)
            members = self._rooms.setdefault(room, set())
            if not members and room not in self._watchers:
                await self.bus.follow(room)
            members.add(conn)
            conn.cursors[room] = Cursor(epoch="", seq=-1)  # set when the Sync is sent
            self._metrics.rooms.set(len(self._rooms))
        if reply:
            conn.offer(
                protocol.dumps(
                    protocol.with_request_id({"type": "joined", "room": room}, request_id)
                )
            )
        conn.offer(Sync(room, last_seq, epoch, request_id))

    async def _leave_room(self, conn: Connection, room: str) -> None:
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
            await self._store.remove_members(_membership_key(conn.id), room)

    async def _broadcast(self, conn: Connection, frame: Frame) -> dict[str, Any]:
        room = frame.room
        if room is None:
            if len(conn.cursors) != 1:
                raise ProtocolError("missing_field", "room is required unless in exactly one room")
            room = next(iter(conn.cursors))
        if room not in conn.cursors:
            raise ProtocolError("not_in_room", "join the room before broadcasting to it")
        await self.broadcast(room, conn.id, frame.message)
        return protocol.with_request_id({"type": "sent", "room": room}, frame.request_id)

    async def _send(self, conn: Connection, frame: Frame) -> dict[str, Any]:
        target = frame.target_id
        assert target is not None
        local = self._connections.get(target)
        rooms = local.rooms if local else await self._store.members(_membership_key(target))
        if not rooms & conn.rooms:
            raise ProtocolError(
                "unknown_target", "no connection with that id shares a room with you"
            )
        await self.bus.send({"target": target, "from": conn.id, "message": frame.message})
        return protocol.with_request_id({"type": "sent", "target": target}, frame.request_id)

    async def broadcast(self, room: str, sender: str, message: Any) -> None:
        """To every other member of the room, on every process and every transport."""
        await self.bus.send({"room": room, "from": sender, "message": message})
        if self.external is not None:
            await self.external.broadcast(room, sender, message)

    async def send_message(
        self, target: str, sender: str, sender_rooms: set[str], message: Any
    ) -> None:
        """To one connection anywhere, if it shares a room with the sender."""
        local = self._connections.get(target)
        rooms = local.rooms if local else await self._store.members(_membership_key(target))
        external = not rooms and self.external is not None
        if external:
            assert self.external is not None
            rooms = await self.external.rooms_of(target)
        if not rooms & sender_rooms:
            raise ProtocolError(
                "unknown_target", "no connection with that id shares a room with you"
            )
        if external:
            assert self.external is not None
            await self.external.send(target, sender, message)
        else:
            await self.bus.send({"target": target, "from": sender, "message": message})

    # -- live traffic from the bus -----------------------------------------------------
    def on_event(self, event: Published) -> None:
        for conn in tuple(self._rooms.get(event.session_id, ())):
            if not conn.offer(event):
                self._metrics.slow_closes.inc()
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
    async def pump(self, conn: Connection) -> None:
        """Send the connection's queue in order, forever (cancelled by its owner)."""
        while True:
            item = await conn.next_item()
            if isinstance(item, str):
                await conn.transport.send_text(item)
            elif isinstance(item, Sync):
                await self._sync(conn, item.room, item.last_seq, item.epoch)
            else:
                await self._deliver(conn, item)

    async def _deliver(self, conn: Connection, event: Published) -> None:
        cursor = conn.cursors.get(event.session_id)
        if cursor is None or (event.seq <= cursor.seq and event.epoch == cursor.epoch):
            return
        if not event.text or event.epoch != cursor.epoch or event.seq > cursor.seq + 1:
            # History was lost (new epoch) or this process missed events: fill from history.
            await self._sync(conn, event.session_id, cursor.seq, cursor.epoch, quiet=True)
            return
        await conn.transport.send_text(event.text)
        cursor.seq = event.seq
        self._metrics.delivered.inc()
        self._metrics.lag.observe(max(0.0, time.time() - event.published_at))

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
        done = await catch_up(
            self.bus, room, last_seq, epoch, conn.transport.send_text, quiet=quiet
        )
        if not quiet:
            self._metrics.resumes.labels(str(done.recovered).lower()).inc()
        conn.cursors[room] = Cursor(done.epoch, done.delivered_seq)


def _membership_key(connection_id: str) -> str:
    return f"hub:conn:{connection_id}"
