"""The process's Redis connection pool, and how calls survive a Redis restart.

Two things make a restarted Redis invisible to callers after its first second back:

- The pool checks each idle connection before handing it out (a connection whose server
  closed it is replaced, not used). redis-py 8 skips that check whenever "maintenance
  notifications" (a Redis Enterprise feature, on by default as ``"auto"``) are enabled:
  ``ensure_connection`` tests ``not pool.maint_notifications_enabled()`` and ``"auto"``
  is truthy. Every connection of the pool then failed once, "Connection closed by
  server", minutes after a restart. They are off here; this service talks to plain Redis.
- An idempotent call (a read, a plain SET, set membership) that meets a dead connection
  anyway (the server closed it a moment ago) runs once more on a fresh connection, after
  the pool drops its idle connections (they died with the same server). Writes that are
  not idempotent (the publish script, INCR, SET NX) never run twice: a 503 and the
  caller's own retry are the honest answer there.

Waiting for a free connection is bounded (``POOL_WAIT_S``); a pool wait that runs out
is not retried (the pool is busy, a second wait would only double the delay).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as redis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.maint_notifications import MaintNotificationsConfig

log = structlog.get_logger(__name__)

T = TypeVar("T")

POOL_WAIT_S = 5.0  # a burst waits this long for a free connection, then 503
CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 5.0  # a stalled Redis (DEBUG SLEEP, SIGSTOP) fails calls after this
HEALTH_CHECK_S = 10  # PING a connection idle for longer than this before using it


def pool_options() -> dict[str, Any]:
    """What every blocking pool of this process is built with, ours and libraries' (the
    pipeline's job queue): bounded waits, keepalive, health checks, and the
    closed-connection check that maintenance notifications would switch off."""
    return {
        "timeout": POOL_WAIT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_S,
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
    }


def open_pool(url: str, *, max_connections: int) -> redis.Redis:
    # A blocking pool: a burst (a thousand clients joining at once) waits for a free
    # connection instead of failing with "Too many connections".
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, **pool_options()
    )
    return redis.Redis(connection_pool=pool)


async def idempotent(client: redis.Redis, op: Callable[[], Awaitable[T]]) -> T:
    """Run ``op``; on a dead connection, once more on a fresh one."""
    try:
        return await op()
    except RedisConnectionError as exc:
        if isinstance(exc.__cause__, TimeoutError):  # the pool wait ran out: no retry
            raise
        log.info("redis_retry_on_fresh_connection", error=str(exc))
        await client.connection_pool.disconnect(inuse_connections=False)
        return await op()
