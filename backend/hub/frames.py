"""One client frame, whatever carries the client: parse it, act on it, answer it.

The one dispatch of the WebSocket protocol for every transport. A :class:`Member` is a
client in the hub's rooms: a WebSocket this process holds (:mod:`.hub`), or an API Gateway
connection whose rooms live in the registry (:mod:`backend.gateway.hub_frames`). They
differ only in how they join, leave, list their rooms and are answered.
"""

from __future__ import annotations

from typing import Any, Protocol

from backend.core.auth import Principal
from backend.core.errors import DomainError
from backend.hub import protocol
from backend.hub.protocol import Action, Frame, ProtocolError


class Member(Protocol):
    @property
    def member_id(self) -> str: ...

    @property
    def principal(self) -> Principal: ...

    async def rooms(self) -> set[str]: ...

    async def join(
        self, room: str, last_seq: int | None, epoch: str | None, request_id: Any, *, resume: bool
    ) -> None:
        """Check access, answer ``joined`` (not on resume), then snapshot and replay."""
        ...

    async def leave(self, room: str) -> None: ...

    async def send(self, message: dict[str, Any]) -> None:
        """Answer this member (in order with what it was sent before)."""
        ...


class Messaging(Protocol):
    """Client messages to the other members, on every process and every transport."""

    async def broadcast(self, room: str, sender: str, message: Any) -> None: ...

    async def send_message(
        self, target: str, sender: str, sender_rooms: set[str], message: Any
    ) -> None: ...


async def handle_frame(member: Member, text: str | bytes, messaging: Messaging) -> None:
    """Act on one client frame; a bad one is answered with an error, never raised."""
    request_id: Any = None
    try:
        frame = protocol.parse_frame(text)
        request_id = frame.request_id
        reply = await _dispatch(member, frame, messaging)
    except ProtocolError as exc:  # raised while parsing (its own id) or acting (ours)
        rid = exc.request_id if exc.request_id is not None else request_id
        reply = protocol.error(exc.code, exc.message, rid)
    except DomainError as exc:
        reply = protocol.error(exc.code, exc.message, request_id)
    if reply is not None:
        await member.send(reply)


async def _dispatch(member: Member, frame: Frame, messaging: Messaging) -> dict[str, Any] | None:
    rid = frame.request_id
    match frame.action:
        case Action.PING:
            return protocol.with_request_id({"type": "pong"}, rid)
        case Action.JOIN | Action.RESUME:
            assert frame.room is not None
            resume = frame.action is Action.RESUME
            await member.join(frame.room, frame.last_seq, frame.epoch, rid, resume=resume)
            return None
        case Action.LEAVE:
            assert frame.room is not None
            if frame.room not in await member.rooms():
                raise ProtocolError("not_in_room", "this connection has not joined that room")
            await member.leave(frame.room)
            return protocol.with_request_id({"type": "left", "room": frame.room}, rid)
        case Action.BROADCAST:
            room = _room_for(await member.rooms(), frame.room)
            await messaging.broadcast(room, member.member_id, frame.message)
            return protocol.with_request_id({"type": "sent", "room": room}, rid)
        case Action.SEND:
            assert frame.target_id is not None
            await messaging.send_message(
                frame.target_id, member.member_id, await member.rooms(), frame.message
            )
            return protocol.with_request_id({"type": "sent", "target": frame.target_id}, rid)
    return None


def _room_for(rooms: set[str], room: str | None) -> str:
    if room is None:
        if len(rooms) != 1:
            raise ProtocolError("missing_field", "room is required unless in exactly one room")
        return next(iter(rooms))
    if room not in rooms:
        raise ProtocolError("not_in_room", "join the room before broadcasting to it")
    return room
