"""The interview service: what the REST endpoints call, and the registry of live calls.

Built and closed by the app's lifespan (:func:`open_interviews`); closing it ends every
live call, so no task or peer connection outlives the process's shutdown.

Its parts: the live calls (:mod:`live_calls`), who speaks on them (:mod:`interviewer`),
a new interview's record (:mod:`new_record`), the ICE servers of a call (:mod:`ice`),
the results (:mod:`results`) and their rubric scoring (:mod:`evaluation`). With a shared
store (Redis) a call's owner is leased there (:mod:`ownership`), signaling that reaches
another process is forwarded to the owner (:mod:`routing`), and a draining process
(SIGTERM) takes no new interview.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import structlog

from backend.core.auth import Principal
from backend.core.clock import iso
from backend.core.errors import Forbidden, NotFound, Unavailable
from backend.core.metrics import Metrics
from backend.core.storage import Store
from interview_service.calls import Call, CallLimits
from interview_service.conversation_seam import ConversationFactory
from interview_service.evaluation import Evaluations
from interview_service.forwarding import ForwardedFrom, Incoming, Relayed
from interview_service.ice import CallIce
from interview_service.interviewer import Interviewer
from interview_service.live_calls import LiveCalls
from interview_service.metrics import InterviewMetrics
from interview_service.new_record import new_record, user_id
from interview_service.owners import Owners
from interview_service.ownership import Ownership, shared_owners
from interview_service.recording import RecordingStore
from interview_service.records import (
    InterviewRecord,
    InterviewRecords,
    InterviewStatus,
    TranscriptLine,
)
from interview_service.report import render_report
from interview_service.results import results_view
from interview_service.routing import Routing, signed_forwarder
from interview_service.settings import InterviewSettings
from interview_service.signaling import Signaling
from interview_service.wrap_up import WrapUp

log = structlog.get_logger(__name__)


class InterviewService:
    def __init__(
        self,
        settings: InterviewSettings,
        store: Store,
        metrics: Metrics,
        conversations: ConversationFactory | None = None,
        recordings: RecordingStore | None = None,
        internal_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.records = InterviewRecords(store, ttl_s=settings.interview_retention_s)
        self.wrap_up = WrapUp(settings, store, self.records, recordings, metrics.registry)
        self._metrics = InterviewMetrics(metrics)
        self.calls = LiveCalls(self._metrics.live)
        self.instance = uuid.uuid4().hex[:16]
        self.interviewer = Interviewer(settings, metrics.registry, conversations)
        self.ice = CallIce(settings)  # the browser's ICE servers, and the server peer's
        self._evaluations = Evaluations(settings.interview_provider_timeout_s)
        self._limits = CallLimits(
            connect_timeout_s=settings.interview_connect_timeout_s,
            idle_timeout_s=settings.interview_idle_timeout_s,
            max_duration_s=settings.interview_max_duration_s,
            heartbeat_s=settings.interview_heartbeat_s,
        )
        owners = shared_owners(settings, store, self.instance, internal_url)
        forwarder = signed_forwarder(settings, self.instance) if owners else None
        self.ownership = (
            None
            if owners is None
            else Ownership(owners, self.calls, self.records, self.wrap_up, self._metrics.swept)
        )
        self.routing = (
            None
            if owners is None or forwarder is None
            else Routing(forwarder, owners, self.calls, self._metrics.forwarded)
        )
        self.signaling = Signaling(settings, self.calls, self.record, self.ice, owners)

    @property
    def owners(self) -> Owners | None:
        return self.ownership.owners if self.ownership is not None else None

    # ---- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        if self.ownership is not None:
            await self.ownership.open()

    async def start(self, principal: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
        self._check_capacity()
        candidate = user_id(principal, body.get("user_id"))
        webhook_url = body.get("webhook_url") or None
        await self.wrap_up.check(webhook_url=webhook_url, record=bool(body.get("record")))
        factory = await self.interviewer.conversations()
        record = await new_record(
            self.settings, principal.sub, candidate, body, self.interviewer.drafter
        )
        await self.records.create(record)
        call = Call(
            record,
            records=self.records,
            conversation=factory(record.plan()),
            peer_options=lambda: self.ice.peer_options(record),
            limits=self._limits,
            on_finished=self._forget,
            recorder=self.wrap_up.recorder(record),
        )
        self.calls.add(call)
        if self.ownership is not None:
            await self.ownership.claim(call)
        log.info("interview_started", interview_id=record.id, user_id=record.user_id)
        return {
            "session_id": record.id,
            "status": record.status.value,
            "ice_servers": self.ice.browser_servers(record, record.created_at),
            "expires_at": iso(record.expires_at),
            "questions": record.questions,
            "questions_source": record.questions_source,
        }

    def _check_capacity(self) -> None:
        if self.calls.draining:
            raise Unavailable(
                "this process is shutting down and takes no new interview; try again",
                code="draining",
                retry_after_s=5,
            )
        if len(self.calls) >= self.settings.interview_max_concurrent:
            self._metrics.refused.inc()
            raise Unavailable(
                f"this process is running {len(self.calls)} interviews, its limit; "
                "try again shortly",
                code="interview_capacity",
                retry_after_s=10,
            )

    def _forget(self, call: Call) -> None:
        if not self.calls.remove(call):
            return
        record = call.record
        self._metrics.finished.labels(
            status=record.status.value, reason=record.end_reason or ""
        ).inc()
        log.info(
            "interview_finished",
            interview_id=call.id,
            status=record.status.value,
            reason=record.end_reason,
            duration_s=record.duration_s(),
        )
        if self.ownership is not None:
            self.ownership.release(call)
        evaluation = self._evaluations.begin(call)
        self.wrap_up.begin(record, call.recorder, evaluation, results_view, call.save)

    async def close(self) -> None:
        self.calls.draining = True
        if self.ownership is not None:
            await self.ownership.stop_renewing()
        for call in list(self.calls.values()):
            await call.finish(InterviewStatus.ENDED, "shutdown")
        if self.ownership is not None:  # the final records saved and the leases let go
            await self.ownership.close()
        if self.routing is not None:
            await self.routing.forwarder.aclose()
        await self._evaluations.close()
        await self.wrap_up.close()  # webhooks not yet delivered stay in the outbox
        await self.interviewer.aclose()

    # ---- more than one process (with a shared store) -----------------------------------

    async def _lease_round(self) -> None:
        assert self.ownership is not None
        await self.ownership.lease_round()

    async def sweep(self) -> int:
        """Mark failed the interviews whose owner's lease expired; how many this did."""
        assert self.ownership is not None
        return await self.ownership.sweep()

    async def drain(self) -> None:
        """Take no new interview from now on; the live calls go on."""
        if self.calls.draining:
            return
        self.calls.draining = True
        log.info("interview_draining", live=len(self.calls))
        if self.ownership is not None:
            await self.ownership.announce_draining()

    async def drained(self, timeout_s: float) -> bool:
        """Wait until no call is left, at most ``timeout_s``; True when none is."""
        if not await self.calls.idle(timeout_s):
            log.warning("interview_drain_timeout", live=len(self.calls))
            return False
        return True

    async def readiness(self) -> None:
        """The readiness probe: a draining process is not ready (no new interviews)."""
        if self.calls.draining:
            raise RuntimeError(f"draining: {len(self.calls)} calls finishing")

    def forwarded_from(self, incoming: Incoming) -> ForwardedFrom | None:
        """The peer that forwarded this request; Forbidden when it claims to be forwarded
        and its signature does not verify."""
        return self.routing.forwarded_from(incoming) if self.routing is not None else None

    async def forward_to_owner(self, interview_id: str, incoming: Incoming) -> Relayed | None:
        """The owner's answer when another live process holds the call, else None."""
        if self.routing is None:
            return None
        return await self.routing.to_owner(interview_id, incoming)

    async def forward_start(self, incoming: Incoming) -> Relayed | None:
        """A draining process hands ``/start`` to a live peer; None: answer it here."""
        if self.routing is None:
            return None
        return await self.routing.start_elsewhere(incoming)

    # ---- reads -------------------------------------------------------------------------

    async def record(self, principal: Principal, interview_id: str) -> InterviewRecord:
        call = self.calls.get(interview_id)
        record = call.refresh() if call else await self.records.load(interview_id)
        if not principal.may_access(record.owner):
            raise Forbidden("this interview belongs to someone else", code="not_your_interview")
        return record

    async def status(self, principal: Principal, interview_id: str) -> dict[str, Any]:
        return (await self.record(principal, interview_id)).status_view()

    async def results(self, principal: Principal, interview_id: str) -> dict[str, Any]:
        record = await self.record(principal, interview_id)
        return {**results_view(record), **await self.wrap_up.views(record)}

    async def report(self, principal: Principal, interview_id: str) -> str:
        """The results as an HTML page, rendered off the event loop: a one-hour interview
        takes a few ms (bench/interview_report.py), a markup-heavy one ten times that."""
        results = await self.results(principal, interview_id)
        return await asyncio.to_thread(render_report, results)

    async def recording(
        self, principal: Principal, interview_id: str
    ) -> tuple[Path | None, str | None]:
        """The stored recording: (a local file to serve, or a URL to redirect to)."""
        record = await self.record(principal, interview_id)
        path, link = await self.wrap_up.recording(record)
        if path is None and link is None:
            raise NotFound("this interview has no recording", code="no_recording")
        return path, link

    # ---- changes -----------------------------------------------------------------------

    async def add_transcript(
        self, principal: Principal, interview_id: str, role: str, text: str, ts: float | None
    ) -> dict[str, Any]:
        record = await self.record(principal, interview_id)
        at = ts if ts is not None else time.time()
        line = TranscriptLine(
            role=role, text=text, start=at, end=at, id=uuid.uuid4().hex[:12], source="client"
        )
        call = self.calls.get(interview_id)
        if call is not None:
            call.add_line(line)
            await call.save()
        else:
            record.add_line(line)
            await self.records.save(record)
        return {"id": line.id, **line.view()}

    async def end(self, principal: Principal, interview_id: str) -> dict[str, Any]:
        record = await self.record(principal, interview_id)
        call = self.calls.get(interview_id)
        if call is not None:
            await call.finish(InterviewStatus.ENDED, "ended_by_client")
            record = call.record
        elif not record.final:
            record.move(InterviewStatus.ENDED, reason="ended_by_client")
            await self.records.save(record)
            await self.wrap_up.send_results(record, results_view)
        return record.status_view()

    async def delete(self, principal: Principal, interview_id: str) -> None:
        """Remove everything of an interview (its call ended first); others see 404."""
        call = self.calls.get(interview_id)
        record = call.record if call else await self.records.load(interview_id)
        if not principal.may_access(record.owner):
            raise NotFound(f"no interview {interview_id!r}", code="interview_not_found")
        self.wrap_up.forget_soon(interview_id)
        if call is not None:
            await call.finish(InterviewStatus.ENDED, "deleted")
        await self.wrap_up.remove(interview_id)


@contextlib.asynccontextmanager
async def open_interviews(
    settings: InterviewSettings,
    store: Store,
    metrics: Metrics,
    conversations: ConversationFactory | None = None,
    recordings: RecordingStore | None = None,
    internal_url: str | None = None,
) -> AsyncIterator[InterviewService]:
    service = InterviewService(settings, store, metrics, conversations, recordings, internal_url)
    service.wrap_up.start()
    warming = asyncio.get_running_loop().create_task(service.interviewer.warm())
    try:
        await service.open()
        yield service
    finally:
        warming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await warming
        await service.close()
