"""The engine without Redis: runs execute as tasks of the service process.

Owned by a TaskGroup that the app's lifespan enters and leaves; at most
``PIPELINE_CONCURRENCY`` runs render at once, the rest wait their turn (status
``queued``). Cancel sets the run's flag and cancels its task; the runner then marks the
unfinished agents ``cancelled`` and removes partial files.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog

from backend.pipeline.runner import Runner

log = structlog.get_logger(__name__)


class EmbeddedEngine:
    name = "embedded"

    def __init__(self, runner: Runner, *, concurrency: int) -> None:
        self._runner = runner
        self._slots = asyncio.Semaphore(concurrency)
        self._runs: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}
        self._group: asyncio.TaskGroup | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[EmbeddedEngine]:
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                yield self
            finally:
                self._group = None
                for task, _ in list(self._runs.values()):
                    task.cancel()

    async def submit(self, session_id: str) -> None:
        if self._group is None:
            raise RuntimeError("the embedded engine is not running")
        if session_id in self._runs:
            return
        cancelled = asyncio.Event()
        task = self._group.create_task(self._run(session_id, cancelled))
        self._runs[session_id] = (task, cancelled)

    async def _run(self, session_id: str, cancelled: asyncio.Event) -> None:
        try:
            async with self._slots:
                await self._runner.run(session_id, cancelled)
        except asyncio.CancelledError:
            if not cancelled.is_set():
                raise
        except Exception:
            log.exception("pipeline_run_crashed", session_id=session_id)
        finally:
            self._runs.pop(session_id, None)

    async def cancel(self, session_id: str, grace_s: float = 6.0) -> bool:
        """Stop the session's run; True once it stopped (False: nothing ran it here)."""
        entry = self._runs.get(session_id)
        if entry is None:
            return False
        task, cancelled = entry
        cancelled.set()
        task.cancel()
        await asyncio.wait([task], timeout=grace_s)
        return True
