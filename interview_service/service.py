"""The interview service: what the REST endpoints call, and the registry of live calls.

Built and closed by the app's lifespan (:func:`open_interviews`); closing it ends every
live call, so no task or peer connection outlives the process's shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import structlog
from prometheus_client import Counter, Gauge

from backend.core.auth import Principal
from backend.core.errors import Conflict, Forbidden, InvalidInput, PayloadTooLarge, Unavailable
from backend.core.metrics import Metrics
from backend.core.storage import Store
from interview_service.calls import Call, CallLimits
from interview_service.conversation_seam import Conversation, ConversationFactory, InterviewPlan
from interview_service.greeter import Greeter
from interview_service.peer import PeerOptions, parse_candidate
from interview_service.records import (
    InterviewRecord,
    InterviewRecords,
    InterviewStatus,
    TranscriptLine,
)
from interview_service.sdp_shape import check_sdp
from interview_service.settings import InterviewSettings
from interview_service.turn_credentials import TurnServerSettings, ice_servers, server_ice_servers
from interview_service.voice.conversation import VoiceConversation
from interview_service.voice.factory import stack_builder, turn_histogram
from interview_service.voice.measures import local_measurements
from interview_service.voice.stack import VoiceStack

log = structlog.get_logger(__name__)

CREDENTIAL_MARGIN_S = 300
EVALUATION_SHUTDOWN_S = 5.0  # TURN credentials outlive the longest possible call by this


class InterviewMetrics:
    def __init__(self, metrics: Metrics) -> None:
        registry = metrics.registry
        self.live = Gauge(
            "interview_calls_live", "Interviews held by this process", registry=registry
        )
        self.finished = Counter(
            "interview_calls_finished_total",
            "Interviews that reached a final state",
            ["status", "reason"],
            registry=registry,
        )
        self.refused = Counter(
            "interview_calls_refused_total",
            "Interviews refused because the process was at INTERVIEW_MAX_CONCURRENT",
            registry=registry,
        )


class InterviewService:
    def __init__(
        self,
        settings: InterviewSettings,
        store: Store,
        metrics: Metrics,
        conversations: ConversationFactory | None = None,
    ) -> None:
        self.settings = settings
        self.records = InterviewRecords(store, ttl_s=settings.interview_record_ttl_s)
        self.calls: dict[str, Call] = {}
        self._metrics = InterviewMetrics(metrics)
        self._conversations: ConversationFactory | None = conversations
        self._voice: VoiceStack | None = None
        self._voice_lock = asyncio.Lock()
        self._turn_histogram = turn_histogram(metrics.registry)
        self._evaluations: set[asyncio.Task[None]] = set()
        self.turn = (
            TurnServerSettings.parse(
                settings.turn_server,
                settings.turn_secret.get_secret_value(),
                tls=settings.turn_tls,
                tls_port=settings.turn_tls_port,
            )
            if settings.turn_server and settings.turn_secret
            else None
        )
        self._limits = CallLimits(
            connect_timeout_s=settings.interview_connect_timeout_s,
            idle_timeout_s=settings.interview_idle_timeout_s,
            max_duration_s=settings.interview_max_duration_s,
            heartbeat_s=settings.interview_heartbeat_s,
        )

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self, principal: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
        if len(self.calls) >= self.settings.interview_max_concurrent:
            self._metrics.refused.inc()
            raise Unavailable(
                f"this process is running {len(self.calls)} interviews, its limit; "
                "try again shortly",
                code="interview_capacity",
                retry_after_s=10,
            )
        now = time.time()
        max_duration = min(
            float(body.get("max_duration_s") or self.settings.interview_max_duration_s),
            self.settings.interview_max_duration_s,
        )
        record = InterviewRecord(
            id=uuid.uuid4().hex,
            user_id=_user_id(principal, body.get("user_id")),
            owner=principal.sub,
            role=body.get("role"),
            questions=list(body.get("questions") or []),
            language=str(body.get("language") or "en"),
            max_duration_s=max_duration,
            created_at=now,
            expires_at=now + self.settings.interview_connect_timeout_s,
        )
        factory = await self._conversation_factory()
        await self.records.create(record)
        plan = InterviewPlan(
            record.id,
            record.user_id,
            record.role,
            tuple(record.questions),
            record.language,
            record.max_duration_s,
        )
        call = Call(
            record,
            records=self.records,
            conversation=factory(plan),
            peer_options=lambda: self._peer_options(record),
            limits=self._limits,
            on_finished=self._forget,
        )
        self.calls[record.id] = call
        self._metrics.live.set(len(self.calls))
        log.info("interview_started", interview_id=record.id, user_id=record.user_id)
        return {
            "session_id": record.id,
            "status": record.status.value,
            "ice_servers": self._browser_ice_servers(record, now),
            "expires_at": record.expires_at,
        }

    async def _conversation_factory(self) -> ConversationFactory:
        if self._conversations is not None:
            return self._conversations
        if self.settings.interview_conversation == "greeter":
            return _greeter
        async with self._voice_lock:
            if self._voice is None:
                try:  # loads the models once per process, off the event loop
                    builder = stack_builder(self.settings.interview_voice_stack)
                    self._voice = await asyncio.to_thread(
                        builder, self.settings, self._turn_histogram
                    )
                except Exception as exc:
                    log.exception("voice_stack_failed")
                    raise Unavailable(
                        f"the interviewer's speech models could not load: {exc}",
                        code="voice_unavailable",
                    ) from exc
        stack = self._voice

        def voice(plan: InterviewPlan) -> Conversation:
            return VoiceConversation(plan, stack)

        return voice

    async def warm(self) -> None:
        """Build the voice stack and run each model once, off the event loop, so the
        first call's greeting comes within a second of it connecting."""
        settings = self.settings
        if (
            self._conversations is not None
            or settings.interview_conversation != "interviewer"
            or not settings.interview_warm_models
        ):
            return
        began = time.perf_counter()
        try:
            await self._conversation_factory()
        except Unavailable:
            return  # logged as voice_stack_failed; /start answers 503 voice_unavailable
        stack = self._voice
        if stack is not None and stack.warm is not None:
            try:
                await asyncio.to_thread(stack.warm)
            except Exception:
                log.exception("voice_warm_failed")
                return
        log.info("voice_models_warm", seconds=round(time.perf_counter() - began, 3))

    def _forget(self, call: Call) -> None:
        if self.calls.pop(call.id, None) is not None:
            self._metrics.live.set(len(self.calls))
            self._metrics.finished.labels(
                status=call.record.status.value, reason=call.record.end_reason or ""
            ).inc()
            log.info(
                "interview_finished",
                interview_id=call.id,
                status=call.record.status.value,
                reason=call.record.end_reason,
                duration_s=call.record.duration_s(),
            )
            conversation = call.conversation
            if isinstance(conversation, VoiceConversation) and conversation.will_evaluate:
                call.record.evaluation = "pending"
                task = asyncio.get_running_loop().create_task(self._evaluate(call, conversation))
                self._evaluations.add(task)
                task.add_done_callback(self._evaluations.discard)

    async def _evaluate(self, call: Call, conversation: VoiceConversation) -> None:
        """Rubric results after the call, bounded in time; the record says how it went."""
        record = call.record
        began = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.interview_provider_timeout_s * 2):
                outcome = await conversation.evaluate()
        except Exception as exc:
            record.evaluation = "failed"
            log.warning("evaluation_failed", interview_id=record.id, error=repr(exc)[:300])
        else:
            if outcome is None:
                record.evaluation = "none"
            else:
                record.summary, record.scores = outcome
                record.evaluation = "ready"
                log.info(
                    "evaluation_ready",
                    interview_id=record.id,
                    seconds=round(time.perf_counter() - began, 3),
                )
        await call.save()

    async def close(self) -> None:
        for call in list(self.calls.values()):
            await call.finish(InterviewStatus.ENDED, "shutdown")
        if self._evaluations:  # a few seconds to finish scoring, then they are dropped
            await asyncio.wait(set(self._evaluations), timeout=EVALUATION_SHUTDOWN_S)
        for task in list(self._evaluations):
            task.cancel()
        if self._evaluations:
            await asyncio.gather(*self._evaluations, return_exceptions=True)
        async with self._voice_lock:  # a stack being built in its thread is waited for
            if self._voice is not None:
                await self._voice.aclose()

    # ---- reads -------------------------------------------------------------------------

    async def record(self, principal: Principal, interview_id: str) -> InterviewRecord:
        call = self.calls.get(interview_id)
        record = call.refresh() if call else await self.records.load(interview_id)
        if not principal.may_access(record.owner):
            raise Forbidden("this interview belongs to someone else", code="not_your_interview")
        return record

    async def status(self, principal: Principal, interview_id: str) -> dict[str, Any]:
        return (await self.record(principal, interview_id)).status_view()

    async def ice_server_list(self, principal: Principal, interview_id: str) -> dict[str, Any]:
        record = await self.record(principal, interview_id)
        return {
            "ice_servers": self._browser_ice_servers(record, time.time()),
            "ttl_s": self._credential_ttl(record),
        }

    async def results(self, principal: Principal, interview_id: str) -> dict[str, Any]:
        record = await self.record(principal, interview_id)
        return {
            "session_id": record.id,
            "status": record.status.value,
            "transcript": [
                {
                    "role": line.role,
                    "text": line.text,
                    "start": line.start,
                    "end": line.end,
                    "interrupted": line.interrupted,
                }
                for line in record.transcript
            ],
            # Only a language model scores, with quotes as evidence; the local stack
            # reports measurements and invents no scores.
            "summary": record.summary,
            "scores": record.scores,
            "evaluation": record.evaluation,
            "interviewer": record.interviewer,
            "metrics": {
                "duration_s": record.duration_s(),
                "turns": record.turns,
                "end_reason": record.end_reason,
                **record.media,
                **local_measurements(record),
                "per_turn": record.turn_metrics,
            },
        }

    # ---- signaling ---------------------------------------------------------------------

    async def live_call(self, principal: Principal, interview_id: str) -> Call:
        record = await self.record(principal, interview_id)
        call = self.calls.get(interview_id)
        if call is None:
            if record.final:
                raise Conflict(
                    f"interview is {record.status.value}", code=f"interview_{record.status}"
                )
            raise Unavailable(
                "this interview's call is held by another process; route its requests to "
                "one instance (ALB stickiness)",
                code="interview_elsewhere",
            )
        return call

    def check_size(self, sdp: str) -> None:
        if len(sdp.encode()) > self.settings.interview_sdp_max_bytes:
            raise PayloadTooLarge(
                f"SDP over {self.settings.interview_sdp_max_bytes} bytes", code="sdp_too_large"
            )

    async def offer(self, principal: Principal, interview_id: str, sdp: str) -> str:
        self.check_size(sdp)
        call = await self.live_call(principal, interview_id)
        check_sdp(sdp, "offer")  # its shape, before the call's peer is replaced
        return await call.accept_offer(sdp)

    async def restart(self, principal: Principal, interview_id: str) -> str:
        call = await self.live_call(principal, interview_id)
        return await call.make_offer()

    async def answer(self, principal: Principal, interview_id: str, sdp: str) -> None:
        self.check_size(sdp)
        call = await self.live_call(principal, interview_id)
        await call.accept_answer(sdp)  # its shape is checked once an offer is known pending

    async def candidates(
        self, principal: Principal, interview_id: str, raw: list[Mapping[str, Any]]
    ) -> None:
        parsed = [parse_candidate(item) for item in raw]  # all or nothing: 400 before any is used
        call = await self.live_call(principal, interview_id)
        await call.add_candidates(parsed)

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
        return {"id": line.id, "role": role, "text": text, "start": at, "end": at}

    async def end(self, principal: Principal, interview_id: str) -> dict[str, Any]:
        record = await self.record(principal, interview_id)
        call = self.calls.get(interview_id)
        if call is not None:
            await call.finish(InterviewStatus.ENDED, "ended_by_client")
            record = call.record
        elif not record.final:
            record.move(InterviewStatus.ENDED, reason="ended_by_client")
            await self.records.save(record)
        return record.status_view()

    # ---- ICE ---------------------------------------------------------------------------

    def _credential_ttl(self, record: InterviewRecord) -> int:
        whole_call = self.settings.interview_connect_timeout_s + record.max_duration_s
        return int(max(self.settings.turn_ttl_s, whole_call + CREDENTIAL_MARGIN_S))

    def _browser_ice_servers(self, record: InterviewRecord, now: float) -> list[dict[str, Any]]:
        return ice_servers(
            self.turn,
            record.user_id,
            ttl_s=self._credential_ttl(record),
            now=now,
            stun_urls=self.settings.stun_urls,
        )

    def _peer_options(self, record: InterviewRecord) -> PeerOptions:
        servers = server_ice_servers(
            self.turn, f"server-{record.id}", ttl_s=self._credential_ttl(record), now=time.time()
        )
        return PeerOptions(
            ice_servers=servers,
            relay_only=self.settings.interview_relay_only,
            gather_timeout_s=self.settings.interview_ice_gather_timeout_s,
        )


def _user_id(principal: Principal, asked: object) -> str:
    """Whom the interview (and its TURN username) is for: with auth on, the caller."""
    if principal.anonymous:  # no auth configured: the client says who the candidate is
        if not isinstance(asked, str) or not asked:
            raise InvalidInput("user_id is required when auth is off", code="missing_user_id")
        return asked
    if asked not in (None, principal.sub):
        raise Forbidden("user_id must be your own id (or left out)", code="user_id_mismatch")
    return principal.sub


def _greeter(plan: InterviewPlan) -> Conversation:
    return Greeter(plan)


@contextlib.asynccontextmanager
async def open_interviews(
    settings: InterviewSettings,
    store: Store,
    metrics: Metrics,
    conversations: ConversationFactory | None = None,
) -> AsyncIterator[InterviewService]:
    service = InterviewService(settings, store, metrics, conversations)
    warming = asyncio.get_running_loop().create_task(service.warm())
    try:
        yield service
    finally:
        warming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await warming
        await service.close()
