"""Interview records in a real Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.asyncio as redis

from backend.app.settings import Settings


async def test_records_live_in_redis_when_configured(
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
) -> None:
    app = await start_app(make_settings(redis_url=redis_url, redis_prefix=redis_prefix))
    response = await app.client.post("/api/interview/start", json={"user_id": "c"})
    started = response.json()
    await app.client.post(f"/api/interview/{started['session_id']}/end")
    client = redis.Redis.from_url(redis_url)
    try:
        key = f"{redis_prefix}interview:{started['session_id']}"
        assert b'"status":"ended"' in (await client.get(key) or b"")
        assert 0 < await client.ttl(key) <= 30 * 24 * 3600  # INTERVIEW_RETENTION_DAYS
    finally:
        await client.aclose()
