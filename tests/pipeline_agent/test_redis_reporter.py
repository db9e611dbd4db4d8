"""The agent helper straight into Redis: the service's subscribers see the events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from backend.app.settings import Settings
from pipeline_agent import ReportError, RetryPolicy
from pipeline_agent.redis_reporter import RedisReporter
from tests.support.live_server import live_server
from tests.support.redis_server import RedisServer
from tests.support.ws_client import Client

FAST = RetryPolicy(attempts=30, initial_s=0.1, max_delay_s=0.5, deadline_s=30)


async def test_an_event_published_into_redis_reaches_a_websocket_subscriber(
    make_settings: Callable[..., Settings], redis_url: str, redis_prefix: str
) -> None:
    settings = make_settings(redis_url=redis_url, redis_prefix=redis_prefix)
    async with live_server(settings) as server:
        subscriber = await Client.open(f"{server.ws_url}/ws/render-1")
        try:
            await subscriber.recv_until("snapshot")
            async with RedisReporter(redis_url, prefix=redis_prefix) as reporter:
                assert await reporter.report("render-1", "go_worker", "running", 0.5, "half") == 1
                assert await reporter.report("render-1", "go_worker", "completed", 1.0) == 2
            received = await subscriber.events(2)
        finally:
            await subscriber.close()
    assert [(e["seq"], e["agent"], e["status"]) for e in received] == [
        (1, "go_worker", "running"),
        (2, "go_worker", "completed"),
    ]
    assert received[0]["message"] == "half"
    assert str(received[0]["ts"]).endswith("Z")


async def test_bad_input_is_refused_before_redis(redis_url: str, redis_prefix: str) -> None:
    async with RedisReporter(redis_url, prefix=redis_prefix) as reporter:
        with pytest.raises(ReportError) as bad_agent:
            await reporter.report("render-2", "no spaces allowed", "running")
        with pytest.raises(ReportError) as bad_session:
            await reporter.report("bad/session", "agent", "running")
    assert bad_agent.value.code == "invalid_agent"
    assert bad_session.value.code == "invalid_session_id"


async def test_retries_while_redis_is_down(private_redis: RedisServer) -> None:
    async with RedisReporter(private_redis.url, retry=FAST) as reporter:
        assert await reporter.report("render-3", "renderer", "running", 0.1) == 1
        private_redis.stop()
        publishing = asyncio.create_task(reporter.report("render-3", "renderer", "running", 0.7))
        deadline = time.monotonic() + 15
        while reporter.retries < 2:
            assert not publishing.done(), publishing
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        private_redis.start()
        assert await asyncio.wait_for(publishing, 30) == 2
