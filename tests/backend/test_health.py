from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from tests.support.redis_server import RedisServer


@pytest.mark.parametrize("path", ["/health", "/api/health", "/api/interview/health"])
async def test_liveness_reports_the_contract_body(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "environment": "test", "version": "0.1.0"}


@pytest.mark.parametrize("path", ["/health/ready", "/api/health/ready"])
async def test_readiness_on_embedded_defaults_is_ready(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


@pytest.mark.redis
async def test_readiness_follows_a_real_redis_down_and_back(
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    private_redis: RedisServer,
) -> None:
    running = await start_app(make_settings(redis_url=private_redis.url, ready_check_timeout_s=1.0))
    up = await running.client.get("/health/ready")
    assert up.status_code == 200
    assert up.json()["checks"]["redis"]["status"] == "up"
    assert up.json()["checks"]["redis"]["latency_ms"] >= 0

    private_redis.stop()
    down = await running.client.get("/health/ready")
    assert down.status_code == 503
    assert down.json()["status"] == "unready"
    assert down.json()["checks"]["redis"]["status"] == "down"
    # Liveness never waits on Redis.
    assert (await running.client.get("/health")).status_code == 200

    private_redis.start()
    for _ in range(50):  # recovery is automatic; allow the listener's backoff
        again = await running.client.get("/health/ready")
        if again.status_code == 200:
            break
        await asyncio.sleep(0.2)
    assert again.status_code == 200, again.json()
    assert again.json()["checks"]["redis"]["status"] == "up"


async def test_metrics_are_prometheus_text_and_count_requests(client: httpx.AsyncClient) -> None:
    await client.get("/health")
    await client.get("/no-such-thing")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'http_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert 'status="404"' in text
    assert "pipeline_build_info" in text


async def test_request_id_is_honoured_and_returned(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = await client.get("/health")
    assert len(generated.headers["x-request-id"]) == 32
    forged = await client.get("/health", headers={"X-Request-ID": "bad id\nwith newline"})
    assert forged.headers["x-request-id"] != "bad id\nwith newline"
