"""The API Gateway bridge: CONNECT, MESSAGE and DISCONNECT as plain HTTP requests.

API Gateway's WebSocket API POSTs every event of a client's connection to ``/ws`` with
``connectionId``, ``eventType`` and ``X-Gateway-Secret`` headers (CONTRACT 2.3). This
module is the domain side of that: it checks the secret in constant time, admits or
refuses CONNECTs (401/403, nothing posted), hands MESSAGE frames to the protocol core
with an :class:`~backend.gateway.transport.ApiGatewayTransport`, and forgets the
connection on DISCONNECT. No FastAPI types here; the router maps the errors.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import structlog

from backend.core.auth import Principal
from backend.core.authenticator import Authenticator
from backend.core.errors import Forbidden, InvalidInput, NotFound
from backend.core.rate_limits import FrameVerdict, LimitName, RateLimiter
from backend.gateway.apigw_sender import ApiGatewaySender
from backend.gateway.registry import ConnectionRegistry, GatewayConnection
from backend.gateway.transport import ApiGatewayTransport, DeliveryDeferred, TransportClosed
from backend.hub.events import SESSION_ID
from backend.hub.hub import SessionAccess
from backend.hub.messaging import RemoteMembers
from backend.hub.seq import seq_from_query

log = structlog.get_logger(__name__)

CONNECTION_ID = re.compile(r"[A-Za-z0-9+/=_-]{1,128}")


class EventType(StrEnum):
    CONNECT = "CONNECT"
    MESSAGE = "MESSAGE"
    DISCONNECT = "DISCONNECT"


@dataclass(slots=True)
class GatewayClient:
    """One API Gateway connection while one of its frames is being handled.

    Its state lives in the registry, because the next frame may reach another process.
    """

    record: GatewayConnection
    transport: ApiGatewayTransport
    registry: ConnectionRegistry
    on_join: Callable[[], None] | None = None  # wakes this process's fan-out

    @property
    def connection_id(self) -> str:
        return self.record.connection_id

    @property
    def principal(self) -> Principal:
        return self.record.principal

    async def rooms(self) -> set[str]:
        return await self.registry.rooms_of(self.connection_id)

    async def join(self, room: str, delivered_seq: int = 0) -> bool:
        """Join after the snapshot/replay up to ``delivered_seq`` has been posted."""
        joined = await self.registry.join(self.record, room, delivered_seq)
        if joined and self.on_join is not None:
            self.on_join()
        return joined

    async def leave(self, room: str) -> None:
        await self.registry.leave(self.connection_id, room)


class FrameHandler(Protocol):
    """The WebSocket protocol core, fed one client frame of an API Gateway client."""

    async def greet(self, client: GatewayClient) -> None:
        """Post ``connected`` (and the snapshot of the session named at CONNECT)."""
        ...

    async def handle_frame(self, client: GatewayClient, text: str) -> None: ...


class SharedSecret:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def check(self, presented: str | None) -> None:
        """Constant-time comparison; a missing or wrong secret is 403."""
        candidate = (presented or "").encode()
        if not hmac.compare_digest(candidate, self._secret):
            raise Forbidden(
                "this endpoint is for AWS API Gateway (X-Gateway-Secret)", code="bad_gateway_secret"
            )


def parse_event(connection_id: str | None, event_type: str | None) -> tuple[str, EventType]:
    if not connection_id or not CONNECTION_ID.fullmatch(connection_id):
        raise InvalidInput("a connectionId header is required", code="invalid_connection_id")
    try:
        return connection_id, EventType((event_type or "").upper())
    except ValueError:
        raise InvalidInput(
            "eventType must be CONNECT, MESSAGE or DISCONNECT", code="invalid_event_type"
        ) from None


class GatewayBridge:
    def __init__(
        self,
        *,
        secret: SharedSecret,
        registry: ConnectionRegistry,
        sender: ApiGatewaySender,
        auth: Authenticator,
        access: SessionAccess,
        frames: FrameHandler,
        on_join: Callable[[], None] | None = None,
        limiter: RateLimiter | None = None,
        members: RemoteMembers | None = None,
    ) -> None:
        self.secret = secret
        self.members = members  # its connections as room members, for the hub's messaging
        self._limiter = limiter
        self.registry = registry
        self._sender = sender
        self._auth = auth
        self._access = access
        self._frames = frames
        self._on_join = on_join

    async def connect(
        self, connection_id: str, query: Mapping[str, str], *, ip: str | None = None
    ) -> GatewayConnection:
        """Admit a client (nothing is posted now: API Gateway has not finished its handshake).

        ``ip`` is the client's address when API Gateway passed it on (X-Forwarded-For);
        otherwise every client would share the gateway's own address and its limit.
        """
        session_id = query.get("session_id") or None
        if session_id is not None and not SESSION_ID.fullmatch(session_id):
            raise InvalidInput(
                "session_id must be 1-128 of [A-Za-z0-9._:-]", code="invalid_session"
            )
        last_seq = seq_from_query(query.get("last_seq"))
        epoch = query.get("epoch") or None
        if epoch is not None and not SESSION_ID.fullmatch(epoch):
            raise InvalidInput("epoch is the one a snapshot gave", code="invalid_epoch")
        principal = await self._auth.authenticate(
            token=query.get("token") or None, api_key=query.get("api_key") or None
        )
        if self._limiter is not None:
            await self._limiter.check(LimitName.WS_CONNECT, principal=principal, ip=ip)
        if session_id is not None:
            try:
                await self._access.check(principal, session_id)
            except NotFound:  # CONNECT answers 200, 401 or 403 (CONTRACT 2.3), as 4403 natively
                raise Forbidden("no such session, or not yours", code="forbidden_session") from None
        record = GatewayConnection(
            connection_id=connection_id,
            sub=principal.sub,
            role=principal.role,
            anonymous=principal.anonymous,
            session_id=session_id,
            last_seq=last_seq,
            epoch=epoch,
        )
        await self.registry.register(record)
        log.info("apigw_connected", connection_id=connection_id, session_id=session_id)
        return record

    async def message(self, connection_id: str, text: str) -> None:
        record = await self.registry.get(connection_id)
        if record is None:
            # API Gateway still holds a socket the registry does not know: its DISCONNECT
            # was lost, or Redis lost its data. Close it, so the client reconnects and
            # resumes with a snapshot, instead of waiting for events that never come.
            await self._sender.disconnect(connection_id)
            raise NotFound("no such API Gateway connection", code="unknown_connection")
        transport = ApiGatewayTransport(connection_id, self._sender)
        if not await self._frame_allowed(connection_id, transport):
            return
        client = GatewayClient(record, transport, self.registry, self._on_join)
        try:
            if await self.registry.claim_greeting(record):  # once, whichever process
                await self._frames.greet(client)
            await self._frames.handle_frame(client, text)
        except TransportClosed:
            log.info("apigw_client_gone", connection_id=connection_id)
        except DeliveryDeferred:
            log.warning("apigw_reply_deferred", connection_id=connection_id)

    async def _frame_allowed(self, connection_id: str, transport: ApiGatewayTransport) -> bool:
        """The frame rate limit: an error reply when over it, the connection deleted when
        the client keeps sending (1008 natively; API Gateway cannot send a close code)."""
        if self._limiter is None:
            return True
        verdict = await self._limiter.gateway_frame(connection_id)
        if verdict is FrameVerdict.ACCEPT:
            return True
        error = {"type": "error", "code": "rate_limited", "message": "too many frames: slow down"}
        with contextlib.suppress(TransportClosed, DeliveryDeferred):
            await transport.send_text(json.dumps(error))
        if verdict is FrameVerdict.CLOSE:
            log.info("apigw_rate_limited_close", connection_id=connection_id)
            await transport.close(1008, "rate_limited")
        return False

    async def oversized(self, connection_id: str, size: int, limit: int) -> None:
        """A frame over the limit: tell the client, then close it (1009 natively)."""
        if await self.registry.get(connection_id) is None:
            return
        transport = ApiGatewayTransport(connection_id, self._sender)
        message = f"frame of {size} bytes exceeds the {limit}-byte limit"
        with contextlib.suppress(TransportClosed, DeliveryDeferred):
            await transport.send_text(
                json.dumps({"type": "error", "code": "frame_too_large", "message": message})
            )
        await transport.close(1009, message)

    async def disconnect(self, connection_id: str) -> None:
        rooms = await self.registry.remove(connection_id)
        log.info("apigw_disconnected", connection_id=connection_id, rooms=sorted(rooms))
