"""The real app under a real uvicorn server, inside the test's event loop.

Real sockets and the real WebSocket stack, without a subprocess's start-up cost. Tests
that need signals or several processes use :mod:`tests.support.uvicorn_process`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn

from backend.app.main import create_app
from backend.app.settings import Settings
from backend.app.state import AppState
from backend.app.ws_protocol import WS_PROTOCOL
from backend.pipeline.settings import PipelineSettings
from tests.support.ports import free_port


class LiveServer:
    def __init__(self, settings: Settings, pipeline: PipelineSettings | None = None) -> None:
        self.settings = settings
        self.port = free_port()
        self.app = create_app(settings, pipeline)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, ws=WS_PROTOCOL,
            ws_max_size=settings.ws_max_frame_bytes, log_config=None, lifespan="on",
            ws_ping_interval=settings.ws_ping_interval_s,
            ws_ping_timeout=settings.ws_ping_timeout_s,
        ))  # fmt: skip

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def services(self) -> AppState:
        """The lifespan's services, once the server has started."""
        services: AppState = self.server.lifespan.state["services"]
        return services


@contextlib.asynccontextmanager
async def live_server(
    settings: Settings, pipeline: PipelineSettings | None = None
) -> AsyncIterator[LiveServer]:
    live = LiveServer(settings, pipeline)
    task = asyncio.create_task(live.server.serve())
    try:
        while not live.server.started:
            if task.done():
                task.result()
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.02)
        yield live
    finally:
        live.server.should_exit = True
        await asyncio.wait_for(task, timeout=15)
