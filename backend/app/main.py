"""The ASGI application: ``create_app(settings)`` and its lifespan.

``app`` is what ``uvicorn backend.app.main:app`` (systemd, ECS) serves; it reads its
settings when the server starts it, not when this module is imported.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from backend.app.http_errors import install_error_handlers
from backend.app.middleware import RequestContextMiddleware
from backend.app.routers import (
    api_docs,
    gateway,
    health,
    interview,
    me,
    pipeline_demo,
    sessions,
    ws,
)
from backend.app.settings import Settings, load_settings
from backend.app.state import open_app_state
from backend.core.logs import configure_logging
from backend.core.metrics import Metrics
from backend.core.settings import SettingsError
from backend.pipeline.settings import PipelineSettings, load_pipeline_settings


def create_app(
    settings: Settings | None = None, pipeline_settings: PipelineSettings | None = None
) -> FastAPI:
    settings = settings or load_settings()
    pipeline_settings = pipeline_settings or load_pipeline_settings()
    configure_logging(settings)
    metrics = Metrics(settings.version, settings.environment.value)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, object]]:
        async with open_app_state(settings, metrics, pipeline_settings) as services:
            yield {"services": services}

    app = FastAPI(
        title="Pipeline backend",
        version=settings.version,
        lifespan=lifespan,
        # Served by routers.api_docs, at the root and under /api/.
        docs_url=None,
        openapi_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(api_docs.router)
    app.include_router(me.router)
    app.include_router(sessions.router)
    app.include_router(ws.router)
    app.include_router(gateway.router)
    app.include_router(interview.router)
    app.include_router(interview.demo_router)
    app.include_router(pipeline_demo.router)
    if not pipeline_settings.s3_bucket:
        # Published videos, captions and thumbnails; FileResponse answers Range requests.
        app.mount(
            "/media",
            StaticFiles(directory=pipeline_settings.media_dir, check_dir=False),
            name="media",
        )

    if settings.frontend_url:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.frontend_url,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "X-API-Key"],
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


class _LazyApp:
    """Builds the real app from the environment on the first ASGI event (lifespan)."""

    def __init__(self) -> None:
        self._app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            try:
                self._app = create_app(load_settings())
            except SettingsError as exc:
                if scope["type"] != "lifespan":
                    raise
                # Fail the start-up (uvicorn exits non-zero) with the variable named.
                await receive()
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
        await self._app(scope, receive, send)


app = _LazyApp()
