"""The ASGI application: ``create_app(settings)`` and its lifespan.

``app`` is what ``uvicorn backend.app.main:app`` (systemd, ECS) serves; it reads its
settings when the server starts it, not when this module is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from types import FrameType

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from backend.app.asgi import ServiceApp
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
)
from backend.app.settings import Settings, load_settings
from backend.app.state import open_app_state
from backend.core.logs import configure_logging
from backend.core.metrics import Metrics
from backend.core.settings import SettingsError
from backend.core.stack_dump import dump_on_signal
from backend.pipeline.settings import PipelineSettings, load_pipeline_settings
from interview_service.service import InterviewService

log = structlog.get_logger(__name__)


def create_app(
    settings: Settings | None = None, pipeline_settings: PipelineSettings | None = None
) -> FastAPI:
    settings = settings or load_settings()
    pipeline_settings = pipeline_settings or load_pipeline_settings()
    configure_logging(settings)
    metrics = Metrics(settings.version, settings.environment.value)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, object]]:
        with dump_on_signal():  # kill -USR1: the stacks, up to the last close
            async with open_app_state(settings, metrics, pipeline_settings) as services:
                with drain_on_sigterm(services.interviews, settings.interview_drain_s):
                    yield {"services": services}

    app = ServiceApp(
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
    app.add_exception_handler(interview.OwnerAnswered, interview.owner_answered)
    app.include_router(sessions.router)  # first: agents' publishes are the most calls
    app.include_router(health.router)
    app.include_router(api_docs.router)
    app.include_router(me.router)
    # /ws is not a route: ServiceApp hands it to routers.ws before the HTTP stack.
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


@contextlib.contextmanager
def drain_on_sigterm(interviews: InterviewService, grace_s: float) -> Iterator[None]:
    """SIGTERM first drains, then lets uvicorn shut down.

    uvicorn's own SIGTERM handler stops listening at once, waits
    ``--timeout-graceful-shutdown`` for requests in flight, then runs the lifespan's end,
    which ends every call still live: a call of several minutes would be cut, and the
    signaling forwarded to this process by its peers refused. So while the lifespan runs,
    SIGTERM is this handler's: the process keeps serving, turns unready (the load balancer
    stops sending), takes no new interview (``/start`` goes to a peer or gets 503 with
    ``Retry-After``), waits up to ``INTERVIEW_DRAIN_S`` for its calls to end, and only
    then hands the signal to uvicorn's handler for the usual graceful shutdown. A second
    SIGTERM skips what is left of the drain. Only under a server that handles SIGTERM in
    this thread (uvicorn); ``INTERVIEW_DRAIN_S=0`` turns it off.
    """
    if grace_s <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    server_handler = signal.getsignal(signal.SIGTERM)
    if not callable(server_handler):  # no server handles SIGTERM here: leave it alone
        yield
        return
    loop = asyncio.get_running_loop()
    draining: list[asyncio.Task[None]] = []
    signalled: list[int] = []

    async def drain_then_stop(signum: int) -> None:
        await interviews.drain()
        log.info("drain_started", grace_s=grace_s, live=len(interviews.calls))
        await interviews.drained(grace_s)
        log.info("drain_done", live=len(interviews.calls))
        server_handler(signum, None)

    def begin(signum: int) -> None:
        draining.append(loop.create_task(drain_then_stop(signum)))

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if signalled:  # the second SIGTERM: stop now
            server_handler(signum, frame)
            return
        signalled.append(signum)
        # A context of its own: not the one of the request the signal interrupted.
        loop.call_soon_threadsafe(begin, signum, context=contextvars.Context())

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, server_handler)
        for task in draining:
            task.cancel()


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
