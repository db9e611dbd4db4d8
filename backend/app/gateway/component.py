"""Builds the API Gateway bridge for the lifespan, or nothing when it is not configured.

The bridge is on only when ``APIGW_SHARED_SECRET`` is set (settings then insist on
``APIGW_MANAGEMENT_ENDPOINT``). It owns the boto3 client's thread pool and the
keep-alive task, and stops both on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog

from backend.app.auth import TokenVerifier
from backend.app.gateway.apigw_sender import ApiGatewaySender, build_client
from backend.app.gateway.bridge import GatewayBridge, SharedSecret
from backend.app.gateway.interim_protocol import InterimProtocol, OpenRoomAccess
from backend.app.gateway.keepalive import KeepAlive
from backend.app.gateway.registry import ConnectionRegistry
from backend.app.settings import Settings
from backend.app.storage import Store

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def open_gateway(
    settings: Settings, store: Store, tokens: TokenVerifier
) -> AsyncIterator[GatewayBridge | None]:
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
    )
    access = OpenRoomAccess()
    bridge = GatewayBridge(
        secret=SharedSecret(settings.apigw_shared_secret.get_secret_value()),
        registry=registry,
        sender=sender,
        tokens=tokens,
        access=access,
        frames=InterimProtocol(access),
    )
    keepalive = asyncio.create_task(
        KeepAlive(store, registry, sender, interval_s=settings.apigw_keepalive_s).run(),
        name="apigw-keepalive",
    )
    log.info("apigw_bridge_ready", endpoint=settings.apigw_management_endpoint)
    try:
        yield bridge
    finally:
        keepalive.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keepalive
        await asyncio.to_thread(sender.close)
