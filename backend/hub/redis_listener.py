"""The hub's pub/sub listener: one connection that must never stay gone, and its supervisor.

A listener subscribes, lets the bus catch up (read what was published while it was
away), then reads. Whatever goes wrong on the way (a refused connect, a dead pooled
connection during the catch-up, a killed pub/sub client, an overflowed output buffer,
a Redis that stopped answering) ends that attempt; it backs off and starts again.

Silence is not trusted: after ``PING_S`` without a message it PINGs on the pub/sub
connection, and ``DEAD_S`` without any answer ends the attempt (a half-open or stalled
connection never raises by itself: a blocking read on it waits forever).

The supervisor owns the listener task. It replaces a listener whose task ended (it
never should) or that made no progress for ``STALL_S`` (heard nothing from Redis and
took no reconnect step). Readiness asks :meth:`Listener.check`: connected, and heard
from Redis within ``DEAD_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis
import structlog

from backend.hub.hub_metrics import HubMetrics

log = structlog.get_logger(__name__)

RESUBSCRIBE_TIMEOUT_S = 5.0  # bound on (re)subscribing after a connection is lost
PING_S = 1.0  # PING the pub/sub connection after this much silence
DEAD_S = 5.0  # no answer at all for this long: the connection is dead, reconnect
STALL_S = 15.0  # no progress for this long: the supervisor replaces the listener
CHECK_S = 1.0  # how often the supervisor looks
RETIRE_S = 2.0  # a cancelled listener gets this long before its connection is closed
MAX_BACKOFF_S = 2.0


class ListenerDown(Exception):
    """Why the listener cannot serve right now (for readiness)."""


class Listener:
    def __init__(
        self,
        client: redis.Redis,
        *,
        channels: Callable[[], list[str]],
        on_subscribed: Callable[[], Awaitable[None]],
        on_message: Callable[[Any], Awaitable[None]],
        metrics: HubMetrics,
        stall_s: float = STALL_S,
        dead_s: float = DEAD_S,
    ) -> None:
        self._client = client
        self._channels = channels
        self._on_subscribed = on_subscribed
        self._on_message = on_message
        self._metrics = metrics
        self._stall_s = stall_s
        self._dead_s = dead_s
        self._pubsub: Any = None
        self._connected = False
        self.connected_event = asyncio.Event()
        self._progress = time.monotonic()  # heard from Redis, or took a reconnect step
        self._heard = time.monotonic()
        self._generation = 0  # a retired listener loop sees it change and stops

    # -- what the bus asks -------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    def check(self) -> None:
        """Raise ListenerDown unless subscribed and heard from Redis lately."""
        if not self._connected:
            raise ListenerDown("the hub's Redis listener is not connected")
        silent = time.monotonic() - self._heard
        if silent > self._dead_s:
            raise ListenerDown(f"the hub's Redis listener heard nothing for {silent:.1f}s")

    async def subscribe(self, channel: str) -> None:
        """Subscribe now if connected; a reconnect subscribes whatever ``channels`` gives."""
        if self._connected and self._pubsub is not None:
            await self._pubsub.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        if self._connected and self._pubsub is not None:
            await self._pubsub.unsubscribe(channel)

    # -- the supervisor ----------------------------------------------------------------
    async def supervise(self) -> None:
        """Run a listener, and replace it whenever it ends or stalls (until cancelled)."""
        while True:
            self._generation += 1
            self._progress = time.monotonic()
            task = asyncio.create_task(self._listen(self._generation), name="hub-redis-listener")
            try:
                reason = await self._watch(task)
            finally:
                await self._retire(task)
            self._metrics.listener_restarts.inc()
            log.error("hub_listener_replaced", reason=reason)

    async def _watch(self, task: asyncio.Task[None]) -> str:
        while True:
            done, _ = await asyncio.wait({task}, timeout=CHECK_S)
            if done:
                error = None if task.cancelled() else task.exception()
                return f"the listener ended: {error!r}"
            idle = time.monotonic() - self._progress
            if idle > self._stall_s:
                return f"the listener made no progress for {idle:.1f}s"

    async def _retire(self, task: asyncio.Task[None]) -> None:
        self._generation += 1  # the loop stops at its next turn even if a cancel is lost
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=RETIRE_S)
        if not done:
            # A read that swallowed the cancel ends when its connection does.
            await self._close_pubsub()
            await asyncio.wait({task})
        self._set_connected(False)

    # -- one listener ------------------------------------------------------------------
    async def _listen(self, generation: int) -> None:
        backoff = 0.1
        while generation == self._generation:
            self.step()
            self._pubsub = self._client.pubsub()
            try:
                async with asyncio.timeout(RESUBSCRIBE_TIMEOUT_S):
                    await self._pubsub.subscribe(*self._channels())
                self._heard = time.monotonic()
                self._set_connected(True)
                await self._on_subscribed()  # the bus catches up from the streams
                backoff = 0.1
                await self._read(generation)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: reconnect (a bug must not end it)
                self._set_connected(False)
                await self._close_pubsub()
                self._metrics.listener_reconnects.inc()
                log.warning("hub_listener_lost", error=str(exc) or repr(exc), retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            finally:
                self._set_connected(False)
                await self._close_pubsub()

    async def _read(self, generation: int) -> None:
        pubsub = self._pubsub
        while generation == self._generation:
            message = await pubsub.get_message(timeout=PING_S)
            now = time.monotonic()
            if message is not None:
                self._heard = self._progress = now
                if message.get("type") == "message":
                    await self._on_message(message["data"])
                continue
            silent = now - self._heard
            if silent > self._dead_s:
                raise TimeoutError(f"no answer on the pub/sub connection for {silent:.1f}s")
            if silent >= PING_S:
                await pubsub.ping()

    def step(self) -> None:
        """Progress: a reconnect step, or (from the bus) one room of a long catch-up."""
        self._progress = time.monotonic()

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        if connected:
            self.connected_event.set()
        else:
            self.connected_event.clear()
        self._metrics.listener_up.set(1 if connected else 0)
