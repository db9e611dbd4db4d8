"""Shared fixtures: apps with their lifespan running, real Redis, real processes.

Redis: ``TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``, the machine's own);
``scripts/test`` starts one when none answers. Each test gets its own key prefix, so
tests never see each other's data, and its keys are removed afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.app.main import create_app
from backend.app.settings import Settings, load_settings
from backend.app.state import AppState
from backend.pipeline.settings import PipelineSettings, load_pipeline_settings
from tests.support.redis_server import RedisServer

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
JWT_SECRET = "test-secret-that-is-long-enough-for-hs256"
ENV_PREFIXES = (
    "AUTH_", "REDIS_", "OPENAI_", "TURN_", "APIGW_", "FRONTEND_", "INTERVIEW_",
    "STT_", "LLM_", "TTS_", "FAKE_VOICE_", "PIPELINE_", "MEDIA_", "S3_", "WEBHOOK_",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests build settings explicitly; the developer's environment must not leak in."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout


@pytest.fixture
def redis_url() -> str:
    return TEST_REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may stop and start."""
    server = RedisServer(tmp_path / "redis", persistent=True)
    server.workdir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        overrides.setdefault("environment", "test")
        overrides.setdefault("log_format", "json")
        # Apps in tests greet instead of loading speech models at every /start; the
        # voice-loop tests ask for the interviewer explicitly.
        overrides.setdefault("interview_conversation", "greeter")
        return load_settings(**overrides)

    return build


@pytest.fixture
def make_pipeline_settings(tmp_path: Path) -> Callable[..., PipelineSettings]:
    """The pipeline's settings with its files under the test's own directory."""

    def build(**overrides: Any) -> PipelineSettings:
        overrides.setdefault("media_dir", tmp_path / "media")
        overrides.setdefault("pipeline_work_dir", tmp_path / "work")
        overrides.setdefault("pipeline_retry_base_s", 0.05)
        return load_pipeline_settings(**overrides)

    return build


class RunningApp:
    """An app with its lifespan running and an httpx client bound to it."""

    def __init__(
        self, app: FastAPI, client: httpx.AsyncClient, state: dict[str, Any] | None = None
    ) -> None:
        self.app = app
        self.client = client
        self._state = state or {}

    @property
    def services(self) -> AppState:
        """The lifespan's services (API keys are created through them, say)."""
        services: AppState = self._state["services"]
        return services


@pytest.fixture
async def start_app() -> AsyncIterator[Callable[[Settings], Any]]:
    managers: list[LifespanManager] = []
    clients: list[httpx.AsyncClient] = []

    async def start(settings: Settings, pipeline: PipelineSettings | None = None) -> RunningApp:
        app = create_app(settings, pipeline)
        manager = LifespanManager(app, startup_timeout=30, shutdown_timeout=30)
        await manager.__aenter__()
        managers.append(manager)
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(client)
        return RunningApp(app, client, manager._state)

    yield start
    for client in clients:
        await client.aclose()
    for manager in reversed(managers):
        await manager.__aexit__(None, None, None)


@pytest.fixture
async def client(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> httpx.AsyncClient:
    """A client of an app on embedded defaults (no Redis, no auth)."""
    running: RunningApp = await start_app(make_settings())
    return running.client
