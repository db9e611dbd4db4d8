"""The hub's protocol core for API Gateway clients: one protocol, two transports.

Each MESSAGE may reach any process, so nothing about the client lives here: its rooms
and cursors are in the registry. Replies, snapshots and replays are posted through the
client's transport; live events come from the room's fan-out (:mod:`.fanout`).
"""

from __future__ import annotations

from typing import Any

import structlog

from backend.core.errors import DomainError
from backend.gateway.apigw_sender import ApiGatewaySender
from backend.gateway.bridge import GatewayClient
from backend.gateway.registry import ConnectionRegistry
from backend.gateway.transport import ApiGatewayTransport, DeliveryDeferred, TransportClosed
from backend.hub import protocol
from backend.hub.hub import Hub
from backend.hub.protocol import Action, Frame, ProtocolError
from backend.hub.replay import catch_up

log = structlog.get_logger(__name__)


class HubFrames:
    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def greet(self, client: GatewayClient) -> None:
        record = client.record
        await _post(client, protocol.connected(client.connection_id, record.session_id))
        if record.session_id is not None:
            await self._join(client, record.session_id, record.last_seq, record.epoch)

    async def handle_frame(self, client: GatewayClient, text: str) -> None:
        request_id: Any = None
        try:
            frame = protocol.parse_frame(text)
            request_id = frame.request_id
            reply = await self._dispatch(client, frame)
        except ProtocolError as exc:  # raised while parsing (its own id) or acting (ours)
            rid = exc.request_id if exc.request_id is not None else request_id
            reply = protocol.error(exc.code, exc.message, rid)
        except DomainError as exc:
            reply = protocol.error(exc.code, exc.message, request_id)
        if reply is not None:
            await _post(client, reply)

    async def _dispatch(self, client: GatewayClient, frame: Frame) -> dict[str, Any] | None:
        rid = frame.request_id
        match frame.action:
            case Action.PING:
                return protocol.with_request_id({"type": "pong"}, rid)
            case Action.JOIN | Action.RESUME:
                assert frame.room is not None
                await self._hub.check_access(client.principal, frame.room)
                if frame.action is Action.JOIN:
                    await _post(
                        client,
                        protocol.with_request_id({"type": "joined", "room": frame.room}, rid),
                    )
                await self._join(client, frame.room, frame.last_seq, frame.epoch)
                return None
            case Action.LEAVE:
                assert frame.room is not None
                if frame.room not in await client.rooms():
                    raise ProtocolError("not_in_room", "this connection has not joined that room")
                await client.leave(frame.room)
                return protocol.with_request_id({"type": "left", "room": frame.room}, rid)
            case Action.BROADCAST:
                room = await _room_for(client, frame.room)
                await self._hub.broadcast(room, client.connection_id, frame.message)
                return protocol.with_request_id({"type": "sent", "room": room}, rid)
            case Action.SEND:
                assert frame.target_id is not None
                await self._hub.send_message(
                    frame.target_id, client.connection_id, await client.rooms(), frame.message
                )
                return protocol.with_request_id({"type": "sent", "target": frame.target_id}, rid)
        return None

    async def _join(
        self, client: GatewayClient, room: str, last_seq: int | None, epoch: str | None
    ) -> None:
        """Snapshot and replay first, then join at the cursor they reached."""
        done = await catch_up(self._hub.bus, room, last_seq, epoch, client.transport.send_text)
        await client.join(room, done.delivered_seq)


async def _room_for(client: GatewayClient, room: str | None) -> str:
    rooms = await client.rooms()
    if room is None:
        if len(rooms) != 1:
            raise ProtocolError("missing_field", "room is required unless in exactly one room")
        return next(iter(rooms))
    if room not in rooms:
        raise ProtocolError("not_in_room", "join the room before broadcasting to it")
    return room


async def _post(client: GatewayClient, message: dict[str, Any]) -> None:
    await client.transport.send_text(protocol.dumps(message))


class ApiGatewayMembers:
    """The hub's view of API Gateway connections, for broadcast and sendMessage."""

    def __init__(self, registry: ConnectionRegistry, sender: ApiGatewaySender) -> None:
        self._registry = registry
        self._sender = sender

    async def rooms_of(self, connection_id: str) -> set[str]:
        if await self._registry.get(connection_id) is None:
            return set()
        return await self._registry.rooms_of(connection_id)

    async def broadcast(self, room: str, sender: str, message: Any) -> None:
        text = protocol.dumps(protocol.room_message(sender, room, message))
        members = sorted(await self._registry.members(room) - {sender})
        await self._sender.post_many([(member, text.encode()) for member in members])

    async def send(self, target: str, sender: str, message: Any) -> None:
        text = protocol.dumps(protocol.direct_message(sender, message))
        try:
            await ApiGatewayTransport(target, self._sender).send_text(text)
        except TransportClosed:
            raise ProtocolError("unknown_target", "that connection has gone") from None
        except DeliveryDeferred:
            log.warning("apigw_direct_message_deferred", target=target)
