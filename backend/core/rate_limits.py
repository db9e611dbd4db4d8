"""Rate limits (CONTRACT §6) with the ``limits`` library: moving windows, shared via Redis.

Each :class:`LimitName` has a rule per principal and a rule per client IP (settings
``RATE_LIMIT_<NAME>`` and ``RATE_LIMIT_<NAME>_PER_IP``). With ``REDIS_URL`` the windows
live in Redis (the store's own connection pool), so every process counts together;
without it, in this process. A limiter that cannot reach Redis lets requests through
(fail open, logged, counted) and skips Redis for a few seconds rather than turn every
request into an error or a wait.

WebSocket frames are limited per connection: a native connection lives in one process,
so its window is a :class:`FrameWindow` of its own (no storage, no await); an API
Gateway connection's frames may reach any process, so theirs go through the shared
storage (:meth:`RateLimiter.gateway_frame`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from prometheus_client import Counter

from backend.core.auth import Principal
from backend.core.errors import LimitExceeded
from backend.core.metrics import Metrics
from backend.core.settings import RateLimitSettings
from backend.core.storage import Store

log = structlog.get_logger(__name__)

STORAGE_TIMEOUT_S = 1.0
SKIP_AFTER_FAILURE_S = 5.0


class LimitName(StrEnum):
    SESSION_CREATE = "session_create"
    EVENT_PUBLISH = "event_publish"
    INTERVIEW_START = "interview_start"
    SIGNALING = "signaling"
    WS_CONNECT = "ws_connect"
    WS_FRAME = "ws_frame"


class RateLimited(LimitExceeded):
    code = "rate_limited"


class FrameVerdict(Enum):
    ACCEPT = "accept"
    REFUSE = "refuse"  # answer with a rate_limited error, keep the connection
    CLOSE = "close"  # kept sending past the limit: close with 1008


@dataclass(frozen=True, slots=True)
class Rule:
    per_principal: list[RateLimitItem]
    per_ip: list[RateLimitItem]


def rules_from(settings: RateLimitSettings) -> dict[LimitName, Rule]:
    rules: dict[LimitName, Rule] = {}
    for name in LimitName:
        if name is LimitName.WS_FRAME:
            continue
        field = f"rate_limit_{name.value}"
        rules[name] = Rule(
            parse_many(getattr(settings, field)), parse_many(getattr(settings, f"{field}_per_ip"))
        )
    return rules


class FrameWindow:
    """One native connection's frames: a moving window, and strikes for refused frames."""

    def __init__(self, items: list[RateLimitItem], strikes: int) -> None:
        self._limits = [(item.amount, float(item.get_expiry())) for item in items]
        self._longest = max(expiry for _, expiry in self._limits)
        self._accepted: deque[float] = deque()
        self._refused: deque[float] = deque()
        self._strikes = strikes

    def hit(self, now: float | None = None) -> FrameVerdict:
        now = time.monotonic() if now is None else now
        while self._accepted and self._accepted[0] <= now - self._longest:
            self._accepted.popleft()
        if all(self._count_since(now - expiry) < amount for amount, expiry in self._limits):
            self._accepted.append(now)
            return FrameVerdict.ACCEPT
        while self._refused and self._refused[0] <= now - 60.0:
            self._refused.popleft()
        self._refused.append(now)
        return FrameVerdict.CLOSE if len(self._refused) > self._strikes else FrameVerdict.REFUSE

    def _count_since(self, start: float) -> int:
        count = 0
        for stamp in reversed(self._accepted):
            if stamp <= start:
                break
            count += 1
        return count


class RateLimiter:
    def __init__(self, settings: RateLimitSettings, storage: Storage, metrics: Metrics) -> None:
        self.enabled = settings.rate_limits_enabled
        self._storage = storage
        self._strategy = MovingWindowRateLimiter(storage)
        self._rules = rules_from(settings)
        self._frame_items = parse_many(settings.rate_limit_ws_frame)
        self._strike_item = parse_many(f"{settings.rate_limit_ws_frame_strikes}/minute")[0]
        self._skip_until = 0.0
        self.refused = Counter(
            "rate_limited_total",
            "Requests, connections and frames refused by a rate limit",
            ["limit", "scope"],
            registry=metrics.registry,
        )
        self.failures = Counter(
            "rate_limiter_failures_total",
            "Rate-limit checks let through because the limiter's storage failed",
            registry=metrics.registry,
        )

    def frame_window(self) -> FrameWindow:
        """A native connection's own frame limit (RATE_LIMIT_WS_FRAME)."""
        strikes = self._strike_item.amount if self.enabled else 1 << 30
        items = self._frame_items if self.enabled else parse_many("1000000000/second")
        return FrameWindow(items, strikes)

    async def check(self, name: LimitName, *, principal: Principal | None, ip: str | None) -> None:
        """Count one request; :class:`RateLimited` (429, Retry-After) when over a limit."""
        if not self.enabled:
            return
        rule = self._rules[name]
        scopes: list[tuple[str, str, list[RateLimitItem]]] = []
        if principal is not None and not principal.anonymous:  # anonymous: one IP each
            scopes.append(
                ("principal", f"{principal.role.value}:{principal.sub}", rule.per_principal)
            )
        if ip:
            scopes.append(("ip", ip, rule.per_ip))
        for scope, identity, items in scopes:
            for item in items:
                if not await self._hit(item, name.value, scope, identity):
                    self.refused.labels(name.value, scope).inc()
                    retry = await self._retry_after(item, name.value, scope, identity)
                    raise RateLimited(
                        f"too many {name.value.replace('_', ' ')} requests: over {item} "
                        f"per {scope}; retry in {retry} s",
                        retry_after_s=retry,
                    )

    async def gateway_frame(self, connection_id: str) -> FrameVerdict:
        """An API Gateway connection's frame, counted wherever its MESSAGEs land."""
        if not self.enabled:
            return FrameVerdict.ACCEPT
        for item in self._frame_items:
            if not await self._hit(item, "ws_frame", "connection", connection_id):
                self.refused.labels(LimitName.WS_FRAME.value, "connection").inc()
                strike = await self._hit(self._strike_item, "ws_strike", connection_id)
                return FrameVerdict.REFUSE if strike else FrameVerdict.CLOSE
        return FrameVerdict.ACCEPT

    def count_frame_refusal(self) -> None:
        self.refused.labels(LimitName.WS_FRAME.value, "connection").inc()

    async def _hit(self, item: RateLimitItem, *identity: str) -> bool:
        if time.monotonic() < self._skip_until:
            return True
        try:
            async with asyncio.timeout(STORAGE_TIMEOUT_S):
                return await self._strategy.hit(item, *identity)
        except (StorageError, OSError, TimeoutError) as exc:
            self._fail_open(exc)
            return True

    async def _retry_after(self, item: RateLimitItem, *identity: str) -> int:
        try:
            async with asyncio.timeout(STORAGE_TIMEOUT_S):
                stats = await self._strategy.get_window_stats(item, *identity)
        except (StorageError, OSError, TimeoutError) as exc:
            self._fail_open(exc)
            return 1
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _fail_open(self, exc: BaseException) -> None:
        self.failures.inc()
        self._skip_until = time.monotonic() + SKIP_AFTER_FAILURE_S
        log.warning(
            "rate_limiter_unavailable",
            error=repr(exc)[:200],
            detail="requests pass unlimited until its storage answers",
            retry_in_s=SKIP_AFTER_FAILURE_S,
        )

    async def close(self) -> None:
        # limits' in-memory storage runs an expiry task of its own; it ends with us.
        timer: asyncio.Task[Any] | None = getattr(self._storage, "timer", None)
        if timer is not None and not timer.done():
            timer.cancel()
            await asyncio.gather(timer, return_exceptions=True)


def _storage(settings: RateLimitSettings, store: Store) -> Storage:
    if not settings.redis_url:
        return MemoryStorage(wrap_exceptions=True)
    from backend.core.storage.redis_store import RedisStore

    assert isinstance(store, RedisStore)
    return RedisStorage(
        "async+" + settings.redis_url,
        implementation="redispy",
        key_prefix=f"{settings.redis_prefix}rl",
        wrap_exceptions=True,
        connection_pool=store.client.connection_pool,  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def open_rate_limiter(
    settings: RateLimitSettings, store: Store, metrics: Metrics
) -> AsyncIterator[RateLimiter]:
    limiter = RateLimiter(settings, _storage(settings, store), metrics)
    if not limiter.enabled:
        log.info("rate_limits_disabled", detail="RATE_LIMITS_ENABLED=false")
    try:
        yield limiter
    finally:
        await limiter.close()
