"""Client messages (broadcast, sendMessage) to every member of a room, on any transport.

The hub reaches the members it holds on every process through the bus; members it does
not hold (API Gateway connections, whose rooms are in the gateway's registry) are given
to :class:`RoomMessaging` at construction by whoever composes the process.
"""

from __future__ import annotations

from typing import Any, Protocol

from backend.hub.hub import Hub
from backend.hub.protocol import ProtocolError


class RemoteMembers(Protocol):
    """Room members the hub does not hold itself: API Gateway connections."""

    async def rooms_of(self, connection_id: str) -> set[str]: ...

    async def broadcast(self, room: str, sender: str, message: Any) -> None: ...

    async def send(self, target: str, sender: str, message: Any) -> None: ...


class RoomMessaging:
    """frames.Messaging over the hub's members and, when given, the remote ones."""

    def __init__(self, hub: Hub, remote: RemoteMembers | None = None) -> None:
        self._hub = hub
        self._remote = remote

    async def broadcast(self, room: str, sender: str, message: Any) -> None:
        """To every other member of the room, on every process and every transport."""
        await self._hub.broadcast(room, sender, message)
        if self._remote is not None:
            await self._remote.broadcast(room, sender, message)

    async def send_message(
        self, target: str, sender: str, sender_rooms: set[str], message: Any
    ) -> None:
        """To one connection anywhere, if it shares a room with the sender."""
        rooms = await self._hub.rooms_of(target)
        remote = self._remote if not rooms else None
        if remote is not None:
            rooms = await remote.rooms_of(target)
        if not rooms & sender_rooms:
            raise ProtocolError(
                "unknown_target", "no connection with that id shares a room with you"
            )
        if remote is not None:
            await remote.send(target, sender, message)
        else:
            await self._hub.send_direct(target, sender, message)
