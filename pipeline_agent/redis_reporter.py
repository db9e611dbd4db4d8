"""Reporting straight into the deployment's Redis (docs/redis-layout.md).

It publishes through the hub's own adapter, :class:`backend.hub.redis_bus.RedisBus`,
so the keys, the Lua script and the event's JSON are exactly the service's: subscribers
on every process get the event as if it came through ``POST /events``. Only
``RedisBus.publish`` is used; nothing listens. Importing this module needs the service's
package (``backend``) and redis-py, but not FastAPI or the app.

Retries while Redis is unreachable, like an agent retrying a 503 over HTTP.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any

import redis.asyncio as redis
from prometheus_client import CollectorRegistry

from backend.core.errors import DomainError
from backend.hub.bus import BusUnavailable
from backend.hub.events import new_event_fields, valid_session_id
from backend.hub.hub_metrics import HubMetrics
from backend.hub.redis_bus import RedisBus
from pipeline_agent.reporter import ReportError, Status
from pipeline_agent.retry import RetryPolicy

DEFAULT_PREFIX = "pb:"
DEFAULT_HISTORY_SIZE = 1000
DEFAULT_TTL_S = 7 * 24 * 3600


class RedisReporter:
    """Use the service's ``REDIS_PREFIX``, ``HUB_HISTORY_SIZE`` and ``HUB_SESSION_TTL_S``."""

    def __init__(
        self,
        redis_url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        history_size: int = DEFAULT_HISTORY_SIZE,
        ttl_s: int = DEFAULT_TTL_S,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._client = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=5)
        self._bus = RedisBus(
            self._client,
            prefix=prefix,
            history_size=history_size,
            ttl_s=ttl_s,
            metrics=HubMetrics(CollectorRegistry()),
        )
        self._retry = retry or RetryPolicy()
        self.retries = 0

    async def report(
        self,
        session: str,
        agent: str,
        status: Status,
        progress: float | None = None,
        message: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        try:
            session = valid_session_id(session)
            fields = new_event_fields(agent, status, progress, message, data)
        except DomainError as exc:
            raise ReportError(exc.message, code=exc.code) from None
        started = time.monotonic()
        for attempt in range(1, self._retry.attempts + 1):
            try:
                return (await self._bus.publish(session, fields)).seq
            except BusUnavailable as exc:
                delay = self._retry.next_delay(attempt, started, time.monotonic())
                if delay is None:
                    raise ReportError(str(exc), code="store_unavailable") from exc
                self.retries += 1
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        await self._bus.close()
        await self._client.aclose()

    async def __aenter__(self) -> RedisReporter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
