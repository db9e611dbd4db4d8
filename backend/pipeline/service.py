"""The pipeline as the API sees it: start, cancel, retry, and the per-user limit."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Protocol

import structlog

from backend.core.errors import Conflict, LimitExceeded, Unavailable
from backend.core.storage import Store
from backend.pipeline.agents import AGENTS
from backend.pipeline.runner import TERMINAL, Runner

log = structlog.get_logger(__name__)
ACTIVE_TTL_S = 24 * 3600
CANCEL_WAIT_S = 6.0
# Held for one admission (a few store round trips, milliseconds). A Redis stall can leave
# it behind (the SET NX lands, its caller timed out): it then blocks the owner this long.
ADMIT_LOCK_S = 3.0
ADMIT_WAIT_S = 5.0


class Engine(Protocol):
    name: str

    async def submit(self, session_id: str) -> None: ...

    async def cancel(self, session_id: str, grace_s: float = CANCEL_WAIT_S) -> bool:
        """Stop the run if this process holds it (True once it stopped); else False."""
        ...


class Pipeline:
    def __init__(self, runner: Runner, engine: Engine | None, store: Store) -> None:
        self.runner = runner
        self.engine = engine  # None: PIPELINE_ENGINE=off, agents elsewhere do the work
        self._store = store
        self._max_active = runner.deps.settings.pipeline_max_active_per_user

    @property
    def enabled(self) -> bool:
        return self.engine is not None

    @contextlib.asynccontextmanager
    async def admission(self, owner: str) -> AsyncIterator[None]:
        """Count-then-start as one step per owner, across processes (a short store lock)."""
        key = f"pipeline:admit:{owner}"
        token = secrets.token_hex(8).encode()
        try:
            async with asyncio.timeout(ADMIT_WAIT_S):
                while True:  # held for milliseconds: polling beats a wake-up channel here
                    if await self._store.put_if_absent(key, token, ttl_s=ADMIT_LOCK_S):
                        break
                    await asyncio.sleep(0.02)
        except TimeoutError:
            # Not the caller's fault (a lock a Redis stall left behind, or a pile-up of
            # the owner's own creates): a 503 to retry, not a 429.
            raise Unavailable(
                "too many videos being started at once; try again", code="busy", retry_after_s=1
            ) from None
        try:
            yield
        finally:
            if await self._store.get(key) == token:
                await self._store.delete(key)

    async def admit(self, owner: str) -> None:
        """Refuse a new run while the owner has PIPELINE_MAX_ACTIVE_PER_USER unfinished."""
        key = _active_key(owner)
        active = await self._store.members(key)
        sessions = self.runner.deps.sessions
        for session_id in active:
            record = await sessions.get(session_id)
            if record is None or record.status in TERMINAL:
                await self._store.remove_members(key, session_id)
                active = active - {session_id}
        if len(active) >= self._max_active:
            raise LimitExceeded(
                f"you have {len(active)} videos in progress (the limit is {self._max_active}); "
                "wait for one to finish or cancel one",
                code="too_many_active_sessions",
                retry_after_s=10,
            )

    async def start(self, session_id: str, owner: str) -> None:
        """Every agent ``queued``, then the run goes to the engine."""
        if self.engine is None:
            return
        await self._store.add_members(_active_key(owner), session_id, ttl_s=ACTIVE_TTL_S)
        await self._queue(session_id, AGENTS, "Waiting for a worker")
        try:
            await self.engine.submit(session_id)
        except Unavailable:
            # The client gets a 503; the record must not stay queued for a run that
            # never went out (best effort: the store may be away too).
            with contextlib.suppress(Unavailable):
                await self.runner.finish_unsent(
                    session_id, "the job queue was unavailable; retry this session"
                )
            raise

    async def _queue(self, session_id: str, agents: tuple[str, ...], message: str) -> None:
        for agent in agents:
            await self.runner.report(session_id, agent, "queued", 0.0, message)
        await self.runner.report(session_id, "pipeline", "queued", 0.0, message)

    async def cancel(self, session_id: str) -> None:
        """Stop the run: its running step stops within 5 s, unfinished agents ``cancelled``."""
        record = await self.runner.deps.sessions.get(session_id)
        if record is not None and record.status in TERMINAL:
            raise Conflict(f"the session is already {record.status}", code="session_finished")
        states = self.runner.deps.states
        await states.request_cancel(session_id)
        here = self.engine is not None and await self.engine.cancel(session_id, CANCEL_WAIT_S)
        if self.engine is not None and not here:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CANCEL_WAIT_S):
                    while True:  # a worker elsewhere notices the flag and finishes the cancel
                        record = await self.runner.deps.sessions.get(session_id)
                        if record is None or record.status in TERMINAL | {"queued"}:
                            break  # done there, or no worker holds it: finish here
                        await asyncio.sleep(0.1)
        record = await self.runner.deps.sessions.get(session_id)
        if record is None or record.status not in TERMINAL:
            await self.runner.finish_cancelled(session_id, None, "cancelled by the owner")

    async def retry(self, session_id: str, owner: str) -> None:
        record = await self.runner.deps.sessions.get(session_id)
        if record is None or record.status not in ("failed", "cancelled"):
            status = "missing" if record is None else record.status
            raise Conflict(
                f"only a failed or cancelled session can be retried (this one is {status})",
                code="session_not_retryable",
            )
        if self.engine is None:
            raise Conflict(
                "this service runs no pipeline (PIPELINE_ENGINE=off)", code="no_pipeline"
            )
        async with self.admission(owner):
            await self.admit(owner)
            await self.runner.deps.sessions.update(session_id, status="queued", error=None)
            await self._store.add_members(_active_key(owner), session_id, ttl_s=ACTIVE_TTL_S)
        states = self.runner.deps.states
        await states.clear_cancel(session_id)
        state = await states.load(session_id)
        unfinished = tuple(a for a in AGENTS if a not in state.outputs)
        await self._queue(session_id, unfinished or ("publisher",), "Queued again (retry)")
        log.info("pipeline_retry", session_id=session_id, from_step=(unfinished or ("-",))[0])
        await self.engine.submit(session_id)


def _active_key(owner: str) -> str:
    return f"pipeline:active:{owner}"
