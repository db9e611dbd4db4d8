"""``pipeline-backend worker``: a process that runs the video pipeline's jobs (REDIS_URL).

It shares the service's Redis: session records, the hub's event streams (agents report
through the same publish path as ``POST /api/sessions/{id}/events``) and the job
stream. Scaling is adding workers; SIGTERM hands running jobs to the others.
"""

from __future__ import annotations

import asyncio
import signal

import structlog
from prometheus_client import CollectorRegistry

from backend.app.settings import Settings
from backend.core.settings import SettingsError
from backend.core.storage import open_store
from backend.core.storage.redis_store import RedisStore
from backend.hub.factory import open_bus
from backend.hub.hub_metrics import HubMetrics
from backend.hub.sessions import Sessions
from backend.pipeline.factory import build_runner, close_runner
from backend.pipeline.queue import PipelineWorker
from backend.pipeline.settings import PipelineSettings

log = structlog.get_logger(__name__)


async def run_worker(
    settings: Settings, pipeline_settings: PipelineSettings, stop: asyncio.Event
) -> None:
    if not settings.redis_url:
        raise SettingsError(
            "REDIS_URL: a worker needs the Redis the service uses (without it the service "
            "runs the pipeline itself)"
        )
    store = open_store(settings.redis_url, prefix=settings.redis_prefix, max_connections=16)
    assert isinstance(store, RedisStore)
    try:
        bus = open_bus(settings, store, HubMetrics(CollectorRegistry()))
        sessions = Sessions(
            store, auth_enabled=settings.auth_configured, ttl_s=settings.hub_session_ttl_s
        )
        runner = build_runner(pipeline_settings, store, bus.publish, sessions)
        worker = PipelineWorker(
            settings.redis_url, settings.redis_prefix, store, runner, pipeline_settings
        )
        try:
            await worker.serve(stop)
        finally:
            await close_runner(runner)
    finally:
        await store.close()


def main(settings: Settings, pipeline_settings: PipelineSettings) -> int:
    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop_signal, stop.set)
        await run_worker(settings, pipeline_settings, stop)

    asyncio.run(serve())
    return 0
