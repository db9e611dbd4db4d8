"""A WebSocket client for tests: JSON in and out, every wait bounded.

Every frame it receives is checked against the published frame schema
(docs/schemas/websocket.schema.json), so each WebSocket test also proves that what the
server sends is what the docs promise.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.frame_schema import check_server_frame


class Client:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> Client:
        return cls(await connect(url, open_timeout=10, **kwargs))

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        value: dict[str, Any] = json.loads(raw)
        check_server_frame(value)
        return value

    async def recv_until(self, kind: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Every message up to and including the first of type ``kind``."""
        seen = []
        while True:
            message = await self.recv(timeout)
            seen.append(message)
            if message.get("type") == kind:
                return seen

    async def events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while len(got) < count:
            message = await self.recv(timeout)
            if message.get("type") == "agent_status":
                got.append(message)
        return got

    async def closed_with(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; the close code."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None
        return None

    async def close(self) -> None:
        await self.ws.close()
