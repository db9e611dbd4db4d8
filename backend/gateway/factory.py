"""Builds the API Gateway bridge for the lifespan, or nothing when it is not configured.

The bridge is on only when ``APIGW_SHARED_SECRET`` is set (settings then insist on
``APIGW_MANAGEMENT_ENDPOINT``). It owns the boto3 client's thread pool, the keep-alive
task and, given the hub's room feed, the fan-out task; it stops them on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from prometheus_client import Counter

from backend.core.authenticator import Authenticator
from backend.core.metrics import Metrics
from backend.core.rate_limits import RateLimiter
from backend.core.storage import Store
from backend.gateway.apigw_sender import ApiGatewaySender, OutcomeHook, build_client
from backend.gateway.bridge import GatewayBridge, SharedSecret
from backend.gateway.fanout import Fanout, RoomFeed
from backend.gateway.hub_feed import HubFeed
from backend.gateway.hub_frames import ApiGatewayMembers, HubFrames
from backend.gateway.keepalive import KeepAlive
from backend.gateway.registry import ConnectionRegistry
from backend.gateway.settings import GatewaySettings
from backend.hub.hub import Hub
from backend.hub.messaging import RoomMessaging

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def open_gateway(
    settings: GatewaySettings,
    store: Store,
    auth: Authenticator,
    metrics: Metrics | None = None,
    *,
    hub: Hub,
    feed: RoomFeed | None = None,
    limiter: RateLimiter | None = None,
) -> AsyncIterator[GatewayBridge | None]:
    """The bridge over the status hub: its protocol core answers frames, its bus feeds the
    fan-out (``feed`` overrides that for tests), its sessions decide who follows what."""
    if settings.apigw_shared_secret is None or not settings.apigw_management_endpoint:
        log.info("apigw_bridge_disabled", detail="APIGW_SHARED_SECRET is not set")
        yield None
        return
    registry = ConnectionRegistry(store)
    client = await asyncio.to_thread(  # botocore reads its service models from disk
        build_client,
        settings.apigw_management_endpoint,
        settings.aws_region,
        pool_size=settings.apigw_post_concurrency,
    )
    sender = ApiGatewaySender(
        client,
        on_gone=registry.remove,
        concurrency=settings.apigw_post_concurrency,
        max_attempts=settings.apigw_post_attempts,
        on_outcome=_count_outcomes(metrics) if metrics is not None else None,
    )
    fanout = Fanout(store, registry, sender, feed or HubFeed(hub))
    members = ApiGatewayMembers(registry, sender)
    bridge = GatewayBridge(
        secret=SharedSecret(settings.apigw_shared_secret.get_secret_value()),
        registry=registry,
        sender=sender,
        auth=auth,
        access=hub.access,
        frames=HubFrames(hub, RoomMessaging(hub, members)),
        members=members,
        on_join=fanout.wake,
        limiter=limiter,
    )
    tasks = [
        asyncio.create_task(
            KeepAlive(store, registry, sender, interval_s=settings.apigw_keepalive_s).run(),
            name="apigw-keepalive",
        )
    ]
    tasks.append(asyncio.create_task(fanout.run(), name="apigw-fanout"))
    log.info("apigw_bridge_ready", endpoint=settings.apigw_management_endpoint)
    try:
        yield bridge
    finally:
        fanout.close()
        for task in tasks:  # owned here: cancelled and awaited, never left running
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(sender.close)


def _count_outcomes(metrics: Metrics) -> OutcomeHook:
    posts = Counter(
        "apigw_posts_total",
        "Messages posted to API Gateway connections (@connections), by outcome",
        ["outcome"],
        registry=metrics.registry,
    )
    return lambda outcome: posts.labels(outcome.value).inc()
