"""The agent helper over HTTP, against the real service under uvicorn."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from backend.app.settings import Settings
from pipeline_agent import HttpReporter, ReportError, RetryPolicy, report
from tests.pipeline_agent.conftest import JWT_SECRET, agent_token
from tests.support.live_server import LiveServer, live_server
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.ws_client import Client

FAST = RetryPolicy(attempts=20, initial_s=0.1, max_delay_s=0.5, deadline_s=30)


async def _events(server: LiveServer, session: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get(
            f"/api/sessions/{session}/events",
            headers={"Authorization": f"Bearer {agent_token('reader')}"},
        )
    assert answer.status_code == 200, answer.text
    events: list[dict[str, object]] = answer.json()["events"]
    return events


async def test_report_with_a_token_reaches_a_subscriber(service: LiveServer) -> None:
    subscriber = await Client.open(f"{service.ws_url}/ws/render-1?token={agent_token('viewer')}")
    try:
        await subscriber.recv_until("snapshot")
        async with HttpReporter(service.base_url, token=agent_token()) as reporter:
            first = await reporter.report("render-1", "renderer", "running", 0.5, "Frame 120/240")
            second = await reporter.report(
                "render-1", "renderer", "completed", 1.0, data={"frames": 240}
            )
        assert (first, second) == (1, 2)
        received = await subscriber.events(2)
    finally:
        await subscriber.close()
    assert [(e["seq"], e["status"], e["progress"]) for e in received] == [
        (1, "running", 0.5),
        (2, "completed", 1.0),
    ]
    assert received[0]["message"] == "Frame 120/240"
    assert received[1]["data"] == {"frames": 240}
    assert reporter.retries == 0


async def test_refusals_are_not_retried(service: LiveServer) -> None:
    async with HttpReporter(service.base_url, token="not-a-jwt", retry=FAST) as reporter:
        with pytest.raises(ReportError) as refused:
            await reporter.report("render-2", "renderer", "running")
    assert refused.value.status == 401
    assert reporter.retries == 0
    async with HttpReporter(service.base_url, token=agent_token(), retry=FAST) as reporter:
        with pytest.raises(ReportError) as invalid:
            await reporter.report("render-2", "renderer", "exploded")  # type: ignore[arg-type]
    assert invalid.value.status == 422
    assert reporter.retries == 0
    assert await _events(service, "render-2") == []


async def test_retries_503_while_the_store_is_down_then_publishes_once(
    make_settings: Callable[..., Settings], private_redis: RedisServer
) -> None:
    settings = make_settings(auth_jwt_secret=JWT_SECRET, redis_url=private_redis.url)
    async with live_server(settings) as server:
        async with HttpReporter(server.base_url, token=agent_token(), retry=FAST) as reporter:
            assert await reporter.report("render-3", "renderer", "running", 0.1) == 1
            private_redis.stop()
            publishing = asyncio.create_task(
                reporter.report("render-3", "renderer", "running", 0.6, "after the outage")
            )
            deadline = time.monotonic() + 15
            while reporter.retries < 2:  # it was refused (503) and is trying again
                assert not publishing.done(), publishing
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            private_redis.start()  # same port, same append-only file
            seq = await asyncio.wait_for(publishing, 30)
        assert seq == 2
        events = await _events(server, "render-3")
    assert [(e["seq"], e["message"]) for e in events] == [(1, None), (2, "after the outage")]


async def test_gives_up_on_a_service_that_is_not_there() -> None:
    policy = RetryPolicy(attempts=3, initial_s=0.05, max_delay_s=0.1)
    reporter = HttpReporter(f"http://127.0.0.1:{free_port()}", token="t", retry=policy)
    async with reporter:
        with pytest.raises(ReportError) as failed:
            await reporter.report("render-4", "renderer", "running")
    assert failed.value.code == "unreachable"
    assert reporter.retries == 2


async def test_the_synchronous_report_function(service: LiveServer) -> None:
    seq = await asyncio.to_thread(
        report,
        "render-5",
        "narrator",
        "completed",
        1.0,
        "Narration ready",
        url=service.base_url,
        token=agent_token(),
    )
    assert seq == 1
    [event] = await _events(service, "render-5")
    assert (event["agent"], event["status"], event["message"]) == (
        "narrator",
        "completed",
        "Narration ready",
    )


def test_the_helper_imports_neither_fastapi_nor_the_app() -> None:
    probe = (
        "import sys, pipeline_agent, pipeline_agent.redis_reporter; "
        "bad = [m for m in ('fastapi', 'starlette', 'backend.app.main') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
