"""The WebSocket protocol core: client frames in, server messages out. No I/O.

Both transports (native WebSockets and API Gateway's ``@connections``) feed frames
through :func:`parse_frame` and send what the builders here return.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from backend.core.errors import InvalidInput
from backend.hub.events import SESSION_ID
from backend.hub.json_shape import MAX_DEPTH, json_problem
from backend.hub.seq import seq_from_json

MAX_REQUEST_ID_CHARS = 128
MAX_EPOCH_CHARS = 64


class Action(StrEnum):
    PING = "ping"
    JOIN = "joinRoom"
    LEAVE = "leaveRoom"
    SEND = "sendMessage"
    BROADCAST = "broadcast"
    RESUME = "resume"


ALIASES = {
    "ping": Action.PING,
    "joinRoom": Action.JOIN,
    "subscribe": Action.JOIN,
    "leaveRoom": Action.LEAVE,
    "unsubscribe": Action.LEAVE,
    "sendMessage": Action.SEND,
    "broadcast": Action.BROADCAST,
    "resume": Action.RESUME,
}


class ProtocolError(Exception):
    """A frame the server cannot act on; answered with an error message, never a close."""

    def __init__(self, code: str, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Frame:
    action: Action
    request_id: Any = None
    room: str | None = None
    last_seq: int | None = None
    epoch: str | None = None
    target_id: str | None = None
    message: Any = None


def parse_frame(text: str | bytes) -> Frame:
    try:
        body = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("invalid_json", "the frame is not valid JSON") from None
    except RecursionError:  # nested past what the decoder can follow
        raise ProtocolError("too_deep", f"frames nest at most {MAX_DEPTH} levels") from None
    request_id = _request_id(body.get("request_id")) if isinstance(body, dict) else None
    problem = json_problem(body, MAX_DEPTH)
    if problem is not None:
        code = "too_deep" if problem.startswith("nested") else "invalid_json"
        raise ProtocolError(code, f"the frame is not plain JSON: {problem}", request_id)
    if not isinstance(body, dict):
        raise ProtocolError("invalid_frame", "a frame is a JSON object with an action")
    raw_action = body.get("action")
    if raw_action is None:
        raise ProtocolError("missing_action", "the frame has no action", request_id)
    action = ALIASES.get(raw_action) if isinstance(raw_action, str) else None
    if action is None:
        known = ", ".join(sorted(ALIASES))
        raise ProtocolError("unknown_action", f"unknown action; use one of {known}", request_id)
    try:
        return _fields(action, body, request_id)
    except ProtocolError as exc:
        exc.request_id = request_id
        raise


def _fields(action: Action, body: dict[str, Any], request_id: Any) -> Frame:
    if action is Action.PING:
        return Frame(action, request_id)
    if action in (Action.JOIN, Action.LEAVE):
        return Frame(
            action,
            request_id,
            room=_room(body),
            last_seq=_last_seq(body, False),
            epoch=_epoch(body),
        )
    if action is Action.RESUME:
        return Frame(
            action, request_id, room=_room(body), last_seq=_last_seq(body, True), epoch=_epoch(body)
        )
    if "message" not in body:
        raise ProtocolError("missing_field", "message is required")
    if action is Action.SEND:
        target = body.get("targetId")
        if not isinstance(target, str) or not target or len(target) > 128:
            raise ProtocolError("missing_field", "targetId (a connection id) is required")
        return Frame(action, request_id, target_id=target, message=body["message"])
    room = _room(body) if body.get("room") is not None else None
    return Frame(action, request_id, room=room, message=body["message"])


def _request_id(value: Any) -> Any:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and len(value) <= MAX_REQUEST_ID_CHARS and not json_problem(value):
        return value
    return None  # unusable ids are dropped rather than echoed


def _room(body: dict[str, Any]) -> str:
    room = body.get("room")
    if room is None:
        raise ProtocolError("missing_field", "room (a session id) is required")
    if not isinstance(room, str) or not SESSION_ID.fullmatch(room):
        raise ProtocolError("invalid_room", "room is 1 to 128 characters from [A-Za-z0-9._:-]")
    return room


def _last_seq(body: dict[str, Any], required: bool) -> int | None:
    value = body.get("last_seq")
    if value is None:
        if required:
            raise ProtocolError("missing_field", "last_seq is required")
        return None
    try:
        return seq_from_json(value)
    except InvalidInput as exc:
        raise ProtocolError(exc.code, exc.message) from None


def _epoch(body: dict[str, Any]) -> str | None:
    value = body.get("epoch")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_EPOCH_CHARS:
        raise ProtocolError("invalid_epoch", "epoch is the string a snapshot gave")
    return value


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def with_request_id(message: dict[str, Any], request_id: Any) -> dict[str, Any]:
    if request_id is not None:
        message["request_id"] = request_id
    return message


def error(code: str, message: str, request_id: Any = None) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "request_id": request_id}


def connected(connection_id: str, session_id: str | None) -> dict[str, Any]:
    return {"type": "connected", "connection_id": connection_id, "session_id": session_id}


def snapshot(
    session_id: str, epoch: str, last_seq: int, recovered: bool, agents: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "snapshot",
        "session_id": session_id,
        "epoch": epoch,
        "last_seq": last_seq,
        "recovered": recovered,
        "agents": agents,
    }


def direct_message(sender: str, message: Any) -> dict[str, Any]:
    return {"type": "message", "from": sender, "message": message}


def room_message(sender: str, room: str, message: Any) -> dict[str, Any]:
    return {"type": "message", "from": sender, "room": room, "message": message}
