"""A stand-in for the status hub's protocol core, until the hub branch is merged.

It speaks the contract's envelope for ``ping``, ``joinRoom``/``subscribe``,
``leaveRoom``/``unsubscribe`` and ``resume``, and answers every other action with an
error naming the missing hub. It sends no snapshot (the hub owns history): a join sets
the connection's cursor to its ``last_seq`` (0 without one) and the fan-out replays the
room's history after it, then the live events. When the hub lands, the gateway component
hands the hub's frame handler to the bridge instead and this module goes.
"""

from __future__ import annotations

import json
from typing import Any

from backend.app.auth import Principal
from backend.app.errors import DomainError
from backend.app.gateway.bridge import SESSION_ID, GatewayClient, RoomAccess


class OpenRoomAccess:
    """Until sessions have owners (the pipeline), every caller may follow every room."""

    async def check(self, principal: Principal, room: str) -> None:
        return None


class InterimProtocol:
    def __init__(self, access: RoomAccess) -> None:
        self._access = access

    async def greet(self, client: GatewayClient) -> None:
        record = client.record
        await _send(
            client,
            {
                "type": "connected",
                "connection_id": record.connection_id,
                "session_id": record.session_id,
            },
        )
        if record.session_id is not None:
            await client.join(record.session_id, record.last_seq or 0)

    async def handle_frame(self, client: GatewayClient, text: str) -> None:
        request_id: Any = None
        try:
            frame = json.loads(text)
            if not isinstance(frame, dict):
                raise _Error("bad_frame", "a frame is a JSON object with an action")
            request_id = frame.get("request_id")
            reply = await self._dispatch(client, frame)
        except json.JSONDecodeError:
            reply = _error("invalid_json", "the frame is not valid JSON", None)
        except _Error as exc:
            reply = _error(exc.code, exc.message, request_id)
        except DomainError as exc:
            reply = _error(exc.code, exc.message, request_id)
        if request_id is not None:
            reply["request_id"] = request_id
        await _send(client, reply)

    async def _dispatch(self, client: GatewayClient, frame: dict[str, Any]) -> dict[str, Any]:
        action = frame.get("action")
        if action == "ping":
            return {"type": "pong"}
        if action in ("joinRoom", "subscribe", "resume"):
            room = _room(frame)
            last_seq = _last_seq(frame)
            await self._access.check(client.principal, room)
            await client.join(room, last_seq)
            return {"type": "joined", "room": room}
        if action in ("leaveRoom", "unsubscribe"):
            room = _room(frame)
            await client.leave(room)
            return {"type": "left", "room": room}
        if isinstance(action, str) and action:
            raise _Error("unsupported_action", f"{action!r} needs the status hub, not yet here")
        raise _Error("missing_action", "the frame has no action")


class _Error(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _room(frame: dict[str, Any]) -> str:
    room = frame.get("room")
    if not isinstance(room, str) or not SESSION_ID.fullmatch(room):
        raise _Error("invalid_room", "room must be a session id: 1-128 of [A-Za-z0-9._:-]")
    return room


def _last_seq(frame: dict[str, Any]) -> int:
    value = frame.get("last_seq", 0)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Error("invalid_last_seq", "last_seq must be a non-negative integer")
    return value


def _error(code: str, message: str, request_id: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "request_id": request_id}


async def _send(client: GatewayClient, message: dict[str, Any]) -> None:
    await client.transport.send_text(json.dumps(message, separators=(",", ":")))
