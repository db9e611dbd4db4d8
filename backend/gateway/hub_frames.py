"""API Gateway clients as members of the hub's rooms: one protocol, one dispatch, two transports.

Each MESSAGE may reach any process, so nothing about the client lives here: its rooms
and cursors are in the registry. Replies, snapshots and replays are posted through the
client's transport; live events come from the room's fan-out (:mod:`.fanout`).
"""

from __future__ import annotations

from typing import Any

import structlog

from backend.core.auth import Principal
from backend.gateway.apigw_sender import ApiGatewaySender
from backend.gateway.bridge import GatewayClient
from backend.gateway.registry import ConnectionRegistry
from backend.gateway.transport import ApiGatewayTransport, DeliveryDeferred, TransportClosed
from backend.hub import frames, protocol
from backend.hub.hub import Hub
from backend.hub.protocol import ProtocolError
from backend.hub.replay import catch_up

log = structlog.get_logger(__name__)


class HubFrames:
    """The bridge's frame handler: the hub's one dispatch (:mod:`backend.hub.frames`)."""

    def __init__(self, hub: Hub, messaging: frames.Messaging) -> None:
        self._hub = hub
        self._messaging = messaging

    async def greet(self, client: GatewayClient) -> None:
        record = client.record
        member = ApiGatewayMember(self._hub, client)
        await member.send(protocol.connected(client.connection_id, record.session_id))
        if record.session_id is not None:
            await member.catch_up(record.session_id, record.last_seq, record.epoch)

    async def handle_frame(self, client: GatewayClient, text: str) -> None:
        await frames.handle_frame(ApiGatewayMember(self._hub, client), text, self._messaging)


class ApiGatewayMember:
    """An API Gateway connection as a member of the hub's rooms (frames.Member).

    Each MESSAGE may reach any process, so its rooms and cursors are in the registry.
    """

    def __init__(self, hub: Hub, client: GatewayClient) -> None:
        self._hub = hub
        self._client = client

    @property
    def member_id(self) -> str:
        return self._client.connection_id

    @property
    def principal(self) -> Principal:
        return self._client.principal

    async def rooms(self) -> set[str]:
        return await self._client.rooms()

    async def join(
        self, room: str, last_seq: int | None, epoch: str | None, request_id: Any, *, resume: bool
    ) -> None:
        await self._hub.check_access(self._client.principal, room)
        if not resume:
            await self.send(protocol.with_request_id({"type": "joined", "room": room}, request_id))
        await self.catch_up(room, last_seq, epoch)

    async def catch_up(self, room: str, last_seq: int | None, epoch: str | None) -> None:
        """Snapshot and replay first, then join at the cursor they reached."""
        client = self._client
        done = await catch_up(self._hub.bus, room, last_seq, epoch, client.transport.send_text)
        await client.join(room, done.delivered_seq)

    async def leave(self, room: str) -> None:
        await self._client.leave(room)

    async def send(self, message: dict[str, Any]) -> None:
        await self._client.transport.send_text(protocol.dumps(message))


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
