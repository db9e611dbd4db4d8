"""The bridge across real service processes: API Gateway may send each event anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli_service import CliService
from tests.support.moto_apigw import REGION, MotoConnections

SECRET = "p" * 40


@pytest.fixture
def two_processes(
    moto_connections: MotoConnections, redis_url: str, redis_prefix: str, tmp_path: Path
) -> Iterator[list[CliService]]:
    env = {
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": redis_prefix,
        "APIGW_SHARED_SECRET": SECRET,
        "APIGW_MANAGEMENT_ENDPOINT": moto_connections.endpoint,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    processes = [CliService(tmp_path, env) for _ in range(2)]
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in processes:
            process.stop()


def _post(process: CliService, cid: str, event: str, body: str = "", **query: str) -> int:
    headers = {"connectionId": cid, "eventType": event, "X-Gateway-Secret": SECRET}
    response = httpx.post(
        f"{process.base_url}/ws", params=query, content=body, headers=headers, timeout=10
    )
    return response.status_code


@pytest.mark.slow
def test_connect_message_disconnect_spread_over_two_processes(
    two_processes: list[CliService], moto_connections: MotoConnections
) -> None:
    one, two = two_processes
    assert _post(one, "spread=", "CONNECT", session_id="sess-p") == 200
    assert moto_connections.raw("spread=") == b""
    assert _post(two, "spread=", "MESSAGE", '{"action": "joinRoom", "room": "sess-q"}') == 200
    assert _post(one, "spread=", "MESSAGE", '{"action": "ping"}') == 200
    kinds = [
        (m["type"], m.get("session_id") or m.get("room"))
        for m in moto_connections.messages("spread=")
    ]
    assert kinds == [
        ("connected", "sess-p"),
        ("snapshot", "sess-p"),
        ("joined", "sess-q"),
        ("snapshot", "sess-q"),
        ("pong", None),
    ]
    assert _post(two, "spread=", "DISCONNECT") == 200
    assert len(moto_connections.messages("spread=")) == 5
    assert _post(one, "spread=", "MESSAGE", '{"action": "ping"}') == 404
    # nothing posted after DISCONNECT; the late frame's socket is closed (moto forgets it)
    assert moto_connections.raw("spread=") == b""
