"""One run of the pipeline: the steps in order, each reported, retried, cancellable.

A run starts at the first step whose stored output is missing (or whose files are gone),
so a resumed or retried run never recomputes a finished step. Each step writes into
``<agent>.partial`` and is renamed into place only when it completed; a cancelled or
failed step's partial files are removed. One structlog line per step with its timings.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from backend.hub.events import new_event_fields
from backend.pipeline.agents import AGENTS, STARTING, STEPS
from backend.pipeline.context import MediaStore, StepContext
from backend.pipeline.errors import StepCancelled, StepFailed, TransientStepError
from backend.pipeline.options import parse_options
from backend.pipeline.pipeline_metrics import PipelineMetrics
from backend.pipeline.settings import PipelineSettings
from backend.pipeline.state import RunState, RunStates

log = structlog.get_logger(__name__)

Publish = Callable[[str, dict[str, Any]], Awaitable[Any]]
TERMINAL = frozenset({"completed", "failed", "cancelled"})


class SessionRecord(Protocol):
    owner: str
    prompt: str
    options: dict[str, Any]
    status: str


class SessionBook(Protocol):
    """The session records the REST API serves (status, outputs, error)."""

    async def get(self, session_id: str) -> Any: ...

    async def update(self, session_id: str, **changes: Any) -> None: ...


@dataclass(slots=True)
class PipelineDeps:
    settings: PipelineSettings
    publish: Publish
    sessions: SessionBook
    states: RunStates
    media: MediaStore
    openai: Any = None
    node: str = "service"  # who runs the steps: the service process or a worker's id
    metrics: PipelineMetrics | None = None


class Runner:
    def __init__(self, deps: PipelineDeps) -> None:
        self.deps = deps

    def run_dir(self, session_id: str) -> Path:
        return self.deps.settings.pipeline_work_dir / session_id

    async def report(
        self,
        session_id: str,
        agent: str,
        status: str,
        progress: float | None = None,
        message: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        fields = new_event_fields(agent, status, progress, message, data)
        await self.deps.publish(session_id, fields)

    async def run(self, session_id: str, cancelled: asyncio.Event) -> str:
        """Run (or resume) the session; its final status, or re-raise a shutdown's cancel."""
        metrics = self.deps.metrics
        if metrics is not None:
            metrics.active.inc()
        try:
            status = await self._run(session_id, cancelled)
        finally:
            if metrics is not None:
                metrics.active.dec()
        if metrics is not None and status in TERMINAL:
            metrics.runs.labels(status).inc()
        return status

    async def _run(self, session_id: str, cancelled: asyncio.Event) -> str:
        deps = self.deps
        record = await deps.sessions.get(session_id)
        if record is None or record.status in TERMINAL:
            log.info("pipeline_run_skipped", session_id=session_id, reason="finished or gone")
            return record.status if record is not None else "gone"
        if await deps.states.cancel_requested(session_id):
            await self.finish_cancelled(session_id, None, "cancelled before it started")
            return "cancelled"
        options = parse_options(record.options)
        state = await deps.states.load(session_id)
        state.attempts += 1
        run_dir = self.run_dir(session_id)
        start = self._first_incomplete(state, run_dir)
        await deps.states.save(state)
        await deps.sessions.update(session_id, status="running", error=None)
        provider = "OpenAI" if deps.openai is not None else "local (no AI model)"
        await self.report(
            session_id, "pipeline", "running", start / len(AGENTS),
            f"Generating with the {provider} providers on {deps.node}"
            + (f", resuming at {AGENTS[start]}" if start else ""),
            {"worker": deps.node, "attempt": state.attempts},
        )  # fmt: skip
        began = time.perf_counter()
        for agent in AGENTS[start:]:
            outcome = await self._step(session_id, agent, record.prompt, options, state, cancelled)
            if outcome != "completed":
                return outcome
        outputs = state.outputs["publisher"]["outputs"]
        await deps.sessions.update(session_id, status="completed", outputs=outputs, error=None)
        await self.report(
            session_id, "pipeline", "completed", 1.0,
            f"Video ready: {outputs['duration_s']:.1f} s", {"outputs": outputs},
        )  # fmt: skip
        log.info(
            "pipeline_run",
            session_id=session_id,
            status="completed",
            wall_s=round(time.perf_counter() - began, 3),
            video_s=outputs["duration_s"],
            resumed_at=AGENTS[start] if start else None,
        )
        await asyncio.to_thread(shutil.rmtree, run_dir, True)
        return "completed"

    def _first_incomplete(self, state: RunState, run_dir: Path) -> int:
        for index, agent in enumerate(AGENTS):
            if agent not in state.outputs or not state.files_present(agent, run_dir):
                for later in AGENTS[index:]:
                    state.outputs.pop(later, None)
                return index
        return len(AGENTS) - 1  # everything stored: publish again (idempotent)

    async def _step(
        self,
        session_id: str,
        agent: str,
        prompt: str,
        options: Any,
        state: RunState,
        cancelled: asyncio.Event,
    ) -> str:
        deps = self.deps
        run_dir = self.run_dir(session_id)
        partial = run_dir / f"{agent}.partial"
        stop = threading.Event()
        began = time.perf_counter()

        async def progress(fraction: float, message: str) -> None:
            await self.report(session_id, agent, "running", round(fraction, 3), message)

        context = StepContext(
            session_id=session_id, prompt=prompt, options=options, settings=deps.settings,
            run_dir=run_dir, workdir=partial, outputs=state.outputs, progress=progress,
            stop=stop, media=deps.media, publish_key=state.publish_key, openai=deps.openai,
        )  # fmt: skip
        await self.report(session_id, agent, "running", 0.0, STARTING[agent])
        try:
            output = await self._attempts(agent, context)
        except (asyncio.CancelledError, StepCancelled):
            if not cancelled.is_set():
                raise  # the process is stopping: the run stays resumable
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            stop.set()
            await self._discard(agent, partial, session_id, state)
            await self.finish_cancelled(session_id, agent, "cancelled by the owner")
            self._log_step(session_id, agent, "cancelled", began)
            return "cancelled"
        except Exception as exc:
            message = exc.message if isinstance(exc, StepFailed) else "internal error"
            if not isinstance(exc, StepFailed):
                log.exception("pipeline_step_crashed", session_id=session_id, agent=agent)
            await self._discard(agent, partial, session_id, state)
            await self.finish_failed(session_id, agent, message)
            self._log_step(session_id, agent, "failed", began, error=message)
            return "failed"
        final = run_dir / agent
        await asyncio.to_thread(_replace_dir, partial, final)
        state.outputs[agent] = output
        await deps.states.save(state)
        await self.report(
            session_id, agent, "completed", 1.0, output["summary"], _public(agent, output)
        )
        self._log_step(session_id, agent, "completed", began)
        return "completed"

    async def _attempts(self, agent: str, context: StepContext) -> dict[str, Any]:
        settings = self.deps.settings
        for attempt in range(1, settings.pipeline_step_attempts + 1):
            await asyncio.to_thread(_fresh_dir, context.workdir)
            try:
                return await STEPS[agent](context)
            except TransientStepError as exc:
                if attempt == settings.pipeline_step_attempts:
                    raise StepFailed(f"{exc.message} (after {attempt} attempts)") from exc
                delay = settings.pipeline_retry_base_s * 2 ** (attempt - 1)
                delay *= 0.8 + 0.4 * random.random()  # noqa: S311 - jitter, not crypto
                await context.progress(
                    0.0, f"Retrying in {delay:.1f} s after a transient error: {exc.message}"
                )
                log.warning("pipeline_step_retry", agent=agent, attempt=attempt, error=exc.message)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _discard(self, agent: str, partial: Path, session_id: str, state: RunState) -> None:
        await asyncio.to_thread(shutil.rmtree, partial, True)
        if agent == "publisher":
            await self.deps.media.remove(f"{session_id}/{state.publish_key}")

    async def finish_cancelled(self, session_id: str, running: str | None, why: str) -> None:
        """Every unfinished agent ``cancelled``, then the record, then the pipeline event."""
        state = await self.deps.states.load(session_id)
        for agent in AGENTS:
            if agent not in state.outputs:
                await self.report(session_id, agent, "cancelled", None, why)
        await self.deps.sessions.update(session_id, status="cancelled")
        await self.report(session_id, "pipeline", "cancelled", None, why)
        log.info("pipeline_run", session_id=session_id, status="cancelled", at=running)

    async def finish_unsent(self, session_id: str, why: str) -> None:
        """The run never reached the job queue: nothing ran, the session failed."""
        for agent in AGENTS:
            await self.report(session_id, agent, "cancelled", None, f"not run: {why}")
        await self.deps.sessions.update(session_id, status="failed", error=why)
        await self.report(session_id, "pipeline", "failed", None, why, {"error": why})
        log.info("pipeline_run", session_id=session_id, status="failed", error=why)

    async def finish_failed(self, session_id: str, agent: str, message: str) -> None:
        state = await self.deps.states.load(session_id)
        error = f"{agent} failed: {message}"
        await self.report(session_id, agent, "failed", None, message)
        for later in AGENTS[AGENTS.index(agent) + 1 :]:
            if later not in state.outputs:
                await self.report(session_id, later, "cancelled", None, f"not run: {agent} failed")
        await self.deps.sessions.update(session_id, status="failed", error=error)
        await self.report(session_id, "pipeline", "failed", None, error, {"error": error})
        log.info("pipeline_run", session_id=session_id, status="failed", error=error)

    def _log_step(
        self, session_id: str, agent: str, status: str, began: float, **extra: Any
    ) -> None:
        seconds = time.perf_counter() - began
        if self.deps.metrics is not None:
            self.deps.metrics.steps.labels(agent, status).observe(seconds)
        log.info(
            "pipeline_step",
            session_id=session_id,
            agent=agent,
            status=status,
            duration_s=round(seconds, 3),
            **extra,
        )


def _public(agent: str, output: dict[str, Any]) -> dict[str, Any]:
    """What a completed event carries (small: events stay far below 64 KiB)."""
    if agent == "script_writer":
        script = output["script"]
        return {
            "title": script["title"],
            "source": output["source"],
            "scenes": [
                {"title": s["title"], "narration": s["narration"], "target_s": s["target_s"]}
                for s in script["scenes"]
            ],
        }
    if agent == "narrator":
        return {"durations_s": output["durations_s"], "total_s": output["total_s"]}
    if agent == "editor":
        return {"duration_s": output["duration_s"], "captions": output["cues"]}
    if agent == "publisher":
        return {"outputs": output["outputs"]}
    return {}


def _fresh_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def _replace_dir(partial: Path, final: Path) -> None:
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
