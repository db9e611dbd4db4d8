"""The WebSocket frame schema the docs publish (docs/schemas/websocket.schema.json)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "websocket.schema.json"


@functools.cache
def _validator(definition: str) -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    return Draft202012Validator({**schema, "$ref": f"#/$defs/{definition}"})


def server_frame_errors(frame: Any) -> list[str]:
    return [error.message for error in _validator("server_frame").iter_errors(frame)]


def client_frame_errors(frame: Any) -> list[str]:
    return [error.message for error in _validator("client_frame").iter_errors(frame)]


def check_server_frame(frame: Any) -> None:
    errors = server_frame_errors(frame)
    assert not errors, f"server frame outside {SCHEMA.name}: {frame!r}: {errors}"
