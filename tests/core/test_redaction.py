"""The masking rules on their own (no I/O): every secret shape, in every quoting."""

from __future__ import annotations

import json
import logging

import pytest

from backend.core.auth import mint_token
from backend.core.redaction import MASK, RedactingFilter, redact_event, redact_text

JWT = mint_token("a-secret-long-enough-for-hs256-signing", "alice")
KEY = "pbk_" + "Zk3_-9" * 7


@pytest.mark.parametrize(
    "line",
    [
        f'127.0.0.1:5 - "WebSocket /ws/S?token={JWT}" [accepted]',
        f"GET /ws?session_id=S&last_seq=3&token={JWT}&x=1",
        f"/ws?api_key={KEY}",
        f"Authorization: Bearer {JWT}",
        f"{{'authorization': 'ApiKey {KEY}', 'x': 1}}",
        f'{{"X-API-Key": "{KEY}"}}',
        f"[(b'x-gateway-secret', b'{'s' * 40}')]",
        "x-gateway-secret=" + "s" * 40,
        "username=1700000000:alice&credential=q1w2e3r4t5y6u7i8o9p0AbCdEfG=",
        f"a bare token {JWT} in a message",
        f"a bare key {KEY} in a message",
        f'json escaped {{\\"authorization\\": \\"Bearer {JWT}\\"}}',
        "turn_secret=hunter2hunter2 and password=pw123",
        "redis is unreachable: rediss://default:hunter2hunter2@cache.internal:6380/0",
    ],
)
def test_secrets_are_masked_wherever_they_appear(line: str) -> None:
    masked = redact_text(line)
    assert MASK in masked
    for secret in (JWT, KEY, "s" * 40, "q1w2e3r4t5y6u7i8o9p0AbCdEfG=", "hunter2hunter2", "pw123"):
        assert secret not in masked, masked


def test_masking_a_json_line_keeps_it_json() -> None:
    line = json.dumps({"event": f'1.2.3.4 - "WebSocket /ws?token={JWT}" [accepted]'})
    masked = redact_text(redact_text(line))
    assert json.loads(masked)["event"] == f'1.2.3.4 - "WebSocket /ws?token={MASK}" [accepted]'


def test_ordinary_text_is_left_alone() -> None:
    line = (
        "request method=GET path=/api/sessions/run-1.v2 status=200 "
        "endpoint=https://abc123.execute-api.us-east-1.amazonaws.com/prod session_id=s:1"
    )
    assert redact_text(line) == line


def test_structlog_events_mask_sensitive_keys_whole_and_nested() -> None:
    event = {
        "event": f"connected with {JWT}",
        "token": "short",
        "ice_servers": [{"urls": ["turn:x"], "username": "1:a", "credential": "c2VjcmV0"}],
        "headers": {"Authorization": "Bearer abc", "Accept": "*/*"},
        "count": 3,
    }
    masked = redact_event(None, "info", event)
    assert masked["event"] == f"connected with {MASK}"
    assert masked["token"] == MASK
    assert masked["ice_servers"][0] == {"urls": ["turn:x"], "username": "1:a", "credential": MASK}
    assert masked["headers"] == {"Authorization": MASK, "Accept": "*/*"}
    assert masked["count"] == 3


def test_the_stdlib_filter_masks_the_rendered_message() -> None:
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1,
        '%s - "WebSocket %s" [accepted]', ("127.0.0.1:1", f"/ws/S?token={JWT}"), None,
    )  # fmt: skip
    assert RedactingFilter().filter(record)
    assert record.getMessage() == f'127.0.0.1:1 - "WebSocket /ws/S?token={MASK}" [accepted]'
