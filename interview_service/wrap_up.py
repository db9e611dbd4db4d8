"""What happens to an interview after its call: the recording kept, the webhook queued,
everything removed on DELETE or when its retention runs out.

The service hands each finished call to :meth:`WrapUp.begin`, which runs in a task of
its own (after the rubric scoring, when there is one): the recorder's file goes to the
recording store, then the results go to the webhook outbox. Neither waits on the call's
process being free: the outbox delivers from every process (see
:mod:`interview_service.webhooks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from backend.core.errors import Unavailable
from backend.core.storage import Store
from interview_service.recording import (
    CONTENT_TYPE,
    LAYOUT,
    Recorder,
    RecordingStore,
    recording_key,
)
from interview_service.records import InterviewRecord, InterviewRecords
from interview_service.settings import InterviewSettings
from interview_service.webhooks import WebhookOutbox, WebhookPolicy, waiting_view

log = structlog.get_logger(__name__)

SHUTDOWN_WAIT_S = 10.0

Results = Callable[[InterviewRecord], dict[str, Any]]


def webhook_policy(settings: InterviewSettings) -> WebhookPolicy:
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    return WebhookPolicy(
        secret=secret.encode(),
        production=settings.environment.value == "production",
        allow_private=settings.webhook_allow_private,
        max_attempts=settings.webhook_max_attempts,
        backoff_s=settings.webhook_backoff_s,
        backoff_max_s=settings.webhook_backoff_max_s,
        timeout_s=settings.webhook_timeout_s,
        retention_s=settings.interview_retention_s,
    )


class WrapUp:
    def __init__(
        self,
        settings: InterviewSettings,
        store: Store,
        records: InterviewRecords,
        recordings: RecordingStore | None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._settings = settings
        self._records = records
        self.recordings = recordings
        self.outbox = WebhookOutbox(store, webhook_policy(settings), registry)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._deleted: set[str] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.outbox.start()
        if self.recordings is not None:
            self._sweeper = asyncio.get_running_loop().create_task(
                self._sweep(), name="recording-sweeper"
            )

    async def close(self) -> None:
        if self._tasks:  # recordings being stored and results being queued: a moment
            await asyncio.wait(set(self._tasks.values()), timeout=SHUTDOWN_WAIT_S)
        for task in [*self._tasks.values(), self._sweeper]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.outbox.close()

    # ---- at /start ---------------------------------------------------------------------

    async def check(self, *, webhook_url: str | None, record: bool) -> None:
        if webhook_url is not None:
            await self.outbox.check(webhook_url)
        if record and self.recordings is None:
            raise Unavailable("recordings are not configured on this server", code="no_recordings")

    def recorder(self, record: InterviewRecord) -> Recorder | None:
        if not record.record_audio:
            return None
        spool = Path(tempfile.gettempdir()) / f"interview-{record.id}.ogg"
        return Recorder(spool)

    # ---- after the call ----------------------------------------------------------------

    def begin(
        self,
        record: InterviewRecord,
        recorder: Recorder | None,
        evaluation: asyncio.Task[None] | None,
        results: Results,
        save: Callable[[], Awaitable[None]],
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._after(record, recorder, evaluation, results, save)
        )
        self._tasks[record.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(record.id, None))

    async def _after(
        self,
        record: InterviewRecord,
        recorder: Recorder | None,
        evaluation: asyncio.Task[None] | None,
        results: Results,
        save: Callable[[], Awaitable[None]],
    ) -> None:
        try:
            if recorder is not None:
                await self._keep(record, recorder)
                await save()
            if evaluation is not None:  # the webhook carries the scores: wait for them
                await asyncio.wait({evaluation})
            if record.webhook_url and record.id not in self._deleted:
                await self.send_results(record, results)
        except Exception:
            log.exception("wrap_up_failed", interview_id=record.id)

    async def _keep(self, record: InterviewRecord, recorder: Recorder) -> None:
        try:
            info = await recorder.close()
            if record.id in self._deleted:
                return
            if info.samples == 0:
                record.recording = {"error": "no audio reached the call"}
                return
            assert self.recordings is not None
            key = recording_key(record.id)
            await self.recordings.save(key, info.path, CONTENT_TYPE)
            record.recording = {
                "key": key,
                "content_type": CONTENT_TYPE,
                "layout": LAYOUT,
                "bytes": info.bytes,
                "duration_s": info.duration_s,
                "dropped_frames": info.dropped_frames,
            }
            log.info(
                "recording_stored",
                interview_id=record.id,
                store=self.recordings.name,
                bytes=info.bytes,
                duration_s=info.duration_s,
            )
        except Exception as exc:
            log.exception("recording_not_kept", interview_id=record.id)
            record.recording = {"error": f"the recording could not be kept: {exc}"[:300]}
        finally:
            recorder.path.unlink(missing_ok=True)

    async def send_results(self, record: InterviewRecord, results: Results) -> None:
        """Queue the results for ``record.webhook_url`` (the body is fixed from now on)."""
        if not record.webhook_url:
            return
        body = {**results(record), **await self.views(record)}
        body.pop("webhook", None)  # the delivery's own state is not part of what it sends
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        await self.outbox.enqueue(record.id, record.webhook_url, data)

    # ---- what results show -------------------------------------------------------------

    async def views(self, record: InterviewRecord) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if record.record_audio:
            extra["recording_url"] = await self._recording_url(record)
            extra["recording"] = record.recording
        if record.webhook_url:
            extra["webhook"] = await self.outbox.view(record.id) or waiting_view(record.webhook_url)
        return extra

    async def _recording_url(self, record: InterviewRecord) -> str | None:
        key = (record.recording or {}).get("key")
        if not key or self.recordings is None:
            return None
        link = await self.recordings.link(key)
        if link is not None:
            return link
        base = self._settings.interview_public_base_url.rstrip("/")
        return f"{base}/api/interview/{record.id}/recording"

    async def recording(self, record: InterviewRecord) -> tuple[Path | None, str | None]:
        """(local file, or a URL to redirect to) of a stored recording; both None: none."""
        key = (record.recording or {}).get("key")
        if not key or self.recordings is None:
            return None, None
        path = self.recordings.path(key)
        if path is not None:
            return (path, None) if path.is_file() else (None, None)
        return None, await self.recordings.link(key)

    # ---- removal -----------------------------------------------------------------------

    def forget_soon(self, interview_id: str) -> None:
        """Whatever ends the call next belongs to a deleted interview: keep nothing."""
        self._deleted.add(interview_id)

    async def remove(self, interview_id: str) -> None:
        task = self._tasks.get(interview_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.outbox.remove(interview_id)
        await self._records.delete(interview_id)
        if self.recordings is not None:
            await self.recordings.remove(interview_id)
        self._deleted.discard(interview_id)
        log.info("interview_deleted", interview_id=interview_id)

    async def _sweep(self) -> None:
        assert self.recordings is not None
        while True:
            try:
                removed = await self.recordings.sweep(self._settings.interview_retention_s)
                if removed:
                    log.info("recordings_swept", removed=removed)
            except Exception:
                log.exception("recording_sweep_failed")
            await asyncio.sleep(self._settings.interview_retention_sweep_s)
