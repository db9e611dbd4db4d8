"""Builds the pipeline for a process: media store, run states, runner and engine."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import CollectorRegistry

from backend.core.storage import Store
from backend.pipeline.context import MediaStore
from backend.pipeline.pipeline_metrics import PipelineMetrics
from backend.pipeline.runner import PipelineDeps, Publish, Runner, SessionBook
from backend.pipeline.service import Engine, Pipeline
from backend.pipeline.settings import PipelineSettings
from backend.pipeline.state import RunStates


def open_media(settings: PipelineSettings) -> MediaStore:
    if settings.s3_bucket:
        from backend.pipeline.s3_media import S3Media

        return S3Media.from_settings(settings)
    from backend.pipeline.local_media import LocalMedia

    return LocalMedia(settings.media_dir, base_url=settings.pipeline_public_base_url)


def open_openai(settings: PipelineSettings) -> Any:
    if not settings.uses_openai:
        return None
    from backend.pipeline.openai_media import OpenAIMedia

    return OpenAIMedia.from_settings(settings)


def build_runner(
    settings: PipelineSettings,
    store: Store,
    publish: Publish,
    sessions: SessionBook,
    registry: CollectorRegistry | None = None,
) -> Runner:
    deps = PipelineDeps(
        settings=settings,
        publish=publish,
        sessions=sessions,
        states=RunStates(store),
        media=open_media(settings),
        openai=open_openai(settings),
        metrics=PipelineMetrics(registry) if registry is not None else None,
    )
    return Runner(deps)


@contextlib.asynccontextmanager
async def open_pipeline(
    settings: PipelineSettings,
    store: Store,
    publish: Publish,
    sessions: SessionBook,
    *,
    redis_url: str | None,
    redis_prefix: str = "pb:",
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[Pipeline]:
    runner = build_runner(settings, store, publish, sessions, registry)
    try:
        async with _engine(settings, runner, store, redis_url, redis_prefix) as pipeline:
            yield pipeline
    finally:
        await close_runner(runner)


async def close_runner(runner: Runner) -> None:
    if runner.deps.openai is not None:
        await runner.deps.openai.close()


@contextlib.asynccontextmanager
async def _engine(
    settings: PipelineSettings,
    runner: Runner,
    store: Store,
    redis_url: str | None,
    redis_prefix: str,
) -> AsyncIterator[Pipeline]:
    choice = settings.pipeline_engine
    if choice == "off":
        yield Pipeline(runner, None, store)
        return
    if choice == "auto" and redis_url:
        from backend.pipeline.queue import QueueEngine

        async with QueueEngine.client(redis_url, redis_prefix, settings) as engine:
            yield Pipeline(runner, engine, store)
        return
    from backend.pipeline.embedded import EmbeddedEngine

    embedded = EmbeddedEngine(runner, concurrency=settings.pipeline_concurrency)
    async with embedded.running():
        chosen: Engine = embedded
        yield Pipeline(runner, chosen, store)
