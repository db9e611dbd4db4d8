"""An API Gateway client seen as a transport: text goes out through ``@connections``.

The hub talks to native WebSockets and to API Gateway clients through the same two
calls (``send_text``, ``close``). Here ``send_text`` is one ``post_to_connection``; the
caller awaits each send before the next, which keeps a connection's messages in order.
"""

from __future__ import annotations

from backend.gateway.apigw_sender import ApiGatewaySender, PostOutcome


class TransportClosed(Exception):
    """The client is gone (410, or DISCONNECT already removed it)."""


class DeliveryDeferred(Exception):
    """API Gateway kept throttling; the client needs a snapshot instead of this message."""


class ApiGatewayTransport:
    """A hub ``Transport`` (backend.hub.connection) over API Gateway's ``@connections``."""

    kind = "apigw"

    def __init__(self, connection_id: str, sender: ApiGatewaySender) -> None:
        self.connection_id = connection_id
        self._sender = sender

    async def send_text(self, text: str) -> None:
        outcome = await self._sender.post(self.connection_id, text.encode())
        if outcome is PostOutcome.GONE:
            raise TransportClosed(self.connection_id)
        if outcome is PostOutcome.THROTTLED:
            raise DeliveryDeferred(self.connection_id)

    async def close(self, code: int, reason: str) -> None:
        """API Gateway cannot send a close code; the client sees the socket close."""
        await self._sender.disconnect(self.connection_id)
