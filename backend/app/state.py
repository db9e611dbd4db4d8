"""The shared clients one process owns, built and closed by the app's lifespan.

Requests reach them through :mod:`backend.app.deps`; nothing here is a module-level
global, so every app built (tests build many) has its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import structlog

from backend.app.recordings import open_recordings
from backend.app.settings import Settings
from backend.core.api_keys import ApiKeys
from backend.core.auth import TokenVerifier
from backend.core.authenticator import Authenticator
from backend.core.health import HealthChecks
from backend.core.metrics import Metrics
from backend.core.rate_limits import RateLimiter, open_rate_limiter
from backend.core.storage import Store, open_store
from backend.gateway.bridge import GatewayBridge
from backend.gateway.factory import open_gateway
from backend.hub.factory import open_hub
from backend.hub.hub import Hub
from backend.hub.messaging import RoomMessaging
from backend.hub.sessions import Sessions
from backend.pipeline.factory import open_pipeline
from backend.pipeline.service import Pipeline
from backend.pipeline.session_control import SessionControl
from backend.pipeline.settings import PipelineSettings
from interview_service.service import InterviewService, open_interviews

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class AppState:
    settings: Settings
    metrics: Metrics
    health: HealthChecks
    store: Store
    http: httpx.AsyncClient
    tokens: TokenVerifier
    api_keys: ApiKeys
    auth: Authenticator
    limiter: RateLimiter
    hub: Hub
    sessions: Sessions
    interviews: InterviewService
    pipeline: Pipeline
    session_control: SessionControl
    messaging: RoomMessaging  # client messages to every member, native and API Gateway
    gateway: GatewayBridge | None = None  # the API Gateway bridge, when configured


def internal_url(settings: Settings) -> str:
    """How the other processes reach this one: ``INTERNAL_URL``, else ``http://`` this
    host's address (``HOST`` when it names one, else what the host name resolves to: the
    task's own address on ECS) and ``PORT``."""
    if settings.internal_url:
        return settings.internal_url
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        try:
            host = socket.gethostbyname(socket.gethostname())
        except OSError:
            host = "127.0.0.1"
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    return f"http://{host}:{settings.port}"


@contextlib.asynccontextmanager
async def open_app_state(
    settings: Settings, metrics: Metrics, pipeline_settings: PipelineSettings
) -> AsyncIterator[AppState]:
    """Open every shared client; close each of them, in reverse order, on the way out."""
    metrics.watch_loop(asyncio.get_running_loop())
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0))
        )
        store = open_store(
            settings.redis_url,
            prefix=settings.redis_prefix,
            max_connections=settings.redis_max_connections,
        )
        stack.push_async_callback(store.close)
        health = HealthChecks(timeout_s=settings.ready_check_timeout_s)
        if store.name != "memory":
            health.register(store.name, store.ping)
        hub, sessions = await stack.enter_async_context(open_hub(settings, store, metrics, health))
        tokens = TokenVerifier(settings, http)
        api_keys = ApiKeys(store)
        auth = Authenticator(tokens, api_keys)
        limiter = await stack.enter_async_context(open_rate_limiter(settings, store, metrics))
        gateway = await stack.enter_async_context(
            open_gateway(settings, store, auth, metrics, hub=hub, limiter=limiter)
        )
        interviews = await stack.enter_async_context(
            open_interviews(
                settings,
                store,
                metrics,
                recordings=open_recordings(settings, pipeline_settings),
                internal_url=internal_url(settings),
            )
        )
        health.register("interviews", interviews.readiness)  # 503 while draining
        pipeline = await stack.enter_async_context(
            open_pipeline(
                pipeline_settings,
                store,
                hub.publish,
                sessions,
                redis_url=settings.redis_url,
                redis_prefix=settings.redis_prefix,
                registry=metrics.registry,
            )
        )
        state = AppState(
            settings=settings,
            metrics=metrics,
            health=health,
            store=store,
            http=http,
            tokens=tokens,
            api_keys=api_keys,
            auth=auth,
            limiter=limiter,
            hub=hub,
            sessions=sessions,
            interviews=interviews,
            pipeline=pipeline,
            session_control=SessionControl(pipeline, sessions, hub),
            messaging=RoomMessaging(hub, gateway.members if gateway is not None else None),
            gateway=gateway,
        )
        if not settings.auth_configured:
            log.warning(
                "auth_disabled",
                detail="no AUTH_JWT_SECRET or AUTH_JWKS_URL: every caller is the anonymous "
                "development user; never run like this in production",
            )
        log.info(
            "services_ready",
            store=store.name,
            environment=settings.environment.value,
            pipeline=pipeline.engine.name if pipeline.engine else "off",
        )
        yield state
        log.info("services_closing")
