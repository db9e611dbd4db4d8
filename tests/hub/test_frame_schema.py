"""The published frame schema (docs/schemas/websocket.schema.json) against the docs and
against frames it must refuse. tests/support/ws_client.py checks every frame the server
sends in the WebSocket tests against the same schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.frame_schema import client_frame_errors, server_frame_errors

DOC = Path(__file__).resolve().parents[2] / "docs" / "websocket.md"

EVENT = {
    "type": "agent_status", "session_id": "render-1", "seq": 42, "agent": "script_writer",
    "status": "running", "progress": 0.4, "message": "Drafting scene 2", "data": {},
    "ts": "2026-11-22T10:00:00.123Z",
}  # fmt: skip


def _documented(prefix: str) -> list[dict[str, Any]]:
    """Each complete JSON frame the protocol page shows after ``prefix``."""
    frames = []
    for line in DOC.read_text().splitlines():
        match = re.match(rf"^{re.escape(prefix)}(\{{.*\}})(\s|$)", line)
        if match:
            try:
                frames.append(json.loads(match.group(1)))
            except json.JSONDecodeError:
                continue  # an abbreviated example ("...")
    return frames


def test_every_documented_frame_fits_the_schema() -> None:
    server, client = _documented("< ") + _documented(""), _documented("> ")
    assert len(server) >= 6
    assert len(client) >= 5
    for frame in server:
        if "action" not in frame:
            assert server_frame_errors(frame) == [], frame
    for frame in client:
        assert client_frame_errors(frame) == [], frame


def test_the_contract_event_fits() -> None:
    assert server_frame_errors(EVENT) == []
    snapshot = {
        "type": "snapshot", "session_id": "render-1", "epoch": "6f1c", "last_seq": 42,
        "recovered": False, "agents": {"script_writer": EVENT},
    }  # fmt: skip
    assert server_frame_errors(snapshot) == []


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 0},  # seq counts from 1
        {"seq": 2**63},
        {"progress": 1.5},
        {"status": "done"},
        {"ts": 1764496800.0},  # times are ISO 8601 strings
        {"session_id": "a/b"},
        {"type": "status"},
    ],
)
def test_an_event_outside_the_contract_is_refused(change: dict[str, Any]) -> None:
    assert server_frame_errors(EVENT | change) != []


def test_frames_missing_what_they_need_are_refused() -> None:
    assert server_frame_errors({"type": "joined"}) != []  # which room?
    assert server_frame_errors({"type": "error", "code": "Bad Code", "message": "x"}) != []
    assert client_frame_errors({"action": "resume", "room": "r"}) != []  # no last_seq
    assert client_frame_errors({"action": "sendMessage", "message": "hi"}) != []
    assert client_frame_errors({"action": "shout"}) != []
