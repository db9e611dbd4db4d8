"""The interview service: what the REST endpoints call, and the registry of live calls.

Built and closed by the app's lifespan (:func:`open_interviews`); closing it ends every
live call, so no task or peer connection outlives the process's shutdown.

With a shared store (Redis) a call's owner is leased there (:mod:`owners`): signaling
that reaches another process is forwarded to the owner (:mod:`forwarding`), a background
loop renews this process's leases and marks the calls of dead processes failed, and a
draining process (SIGTERM) takes no new interview.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import structlog
from prometheus_client import Counter, Gauge

from backend.core.auth import Principal
from backend.core.clock import iso
from backend.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from backend.core.metrics import Metrics
from backend.core.storage import Store
from interview_service.calls import Call, CallLimits
from interview_service.conversation_seam import Conversation, ConversationFactory, InterviewPlan
from interview_service.forwarding import HEADER, ForwardedFrom, Forwarder, Incoming, Relayed
from interview_service.greeter import Greeter
from interview_service.owners import Instance, Owners
from interview_service.peer import PeerOptions, parse_candidate
from interview_service.plan import DEFAULT_QUESTIONS
from interview_service.recording import RecordingStore
from interview_service.records import (
    InterviewRecord,
    InterviewRecords,
    InterviewStatus,
    TranscriptLine,
)
from interview_service.report import render_report
from interview_service.scoring import rubric_from
from interview_service.sdp_shape import check_sdp
from interview_service.settings import InterviewSettings
from interview_service.turn_credentials import TurnServerSettings, ice_servers, server_ice_servers
from interview_service.voice.conversation import VoiceConversation
from interview_service.voice.factory import stack_builder, turn_histogram
from interview_service.voice.measures import local_measurements
from interview_service.voice.providers import ResultsWriter, Turn
from interview_service.voice.stack import VoiceStack
from interview_service.wrap_up import WrapUp

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
        self.forwarded = Counter(
            "interview_requests_forwarded_total",
            "Signaling requests forwarded to the process holding the call",
            ["outcome"],  # answered | unreachable
            registry=registry,
        )
        self.swept = Counter(
            "interview_calls_swept_total",
            "Interviews of a dead process marked failed by this one",
            registry=registry,
        )


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
        self.calls: dict[str, Call] = {}
        self.instance = uuid.uuid4().hex[:16]
        self.draining = False
        # A lease per call only where other processes can see it (a shared store);
        # forwarding only with the secret that authenticates it.
        self.owners: Owners | None = None
        self.forwarder: Forwarder | None = None
        if store.name != "memory":
            url = settings.internal_url or internal_url or "http://127.0.0.1:8000"
            self.owners = Owners(
                store, Instance(self.instance, url), ttl_s=settings.interview_owner_ttl_s
            )
            if settings.internal_secret and settings.internal_secret.get_secret_value():
                self.forwarder = Forwarder(
                    settings.internal_secret.get_secret_value(),
                    self.instance,
                    timeout_s=settings.internal_forward_timeout_s,
                )
        self._leases: asyncio.Task[None] | None = None
        self._releases: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()  # set while no call is live: the drain waits on it
        self._idle.set()
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
        if self.draining:
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
        user_id = _user_id(principal, body.get("user_id"))
        webhook_url = body.get("webhook_url") or None
        await self.wrap_up.check(webhook_url=webhook_url, record=bool(body.get("record")))
        factory = await self._conversation_factory()
        record = await self._new_record(principal.sub, user_id, body)
        await self.records.create(record)
        call = Call(
            record,
            records=self.records,
            conversation=factory(record.plan()),
            peer_options=lambda: self._peer_options(record),
            limits=self._limits,
            on_finished=self._forget,
            recorder=self.wrap_up.recorder(record),
        )
        self.calls[record.id] = call
        self._idle.clear()
        self._metrics.live.set(len(self.calls))
        if self.owners is not None:
            try:
                await self.owners.claim(record.id)
            except Exception:
                await call.finish(InterviewStatus.FAILED, "owner_unrecorded")
                raise
        log.info("interview_started", interview_id=record.id, user_id=record.user_id)
        return {
            "session_id": record.id,
            "status": record.status.value,
            "ice_servers": self._browser_ice_servers(record, record.created_at),
            "expires_at": iso(record.expires_at),
            "questions": record.questions,
            "questions_source": record.questions_source,
        }

    async def _new_record(
        self, owner: str, user_id: str, body: Mapping[str, Any]
    ) -> InterviewRecord:
        """The record of a new interview, with its plan (its questions drafted if need be)."""
        questions, source = await self._questions(body)
        follow_ups = body.get("max_follow_ups")
        now = time.time()
        return InterviewRecord(
            id=uuid.uuid4().hex,
            user_id=user_id,
            owner=owner,
            role=body.get("role"),
            questions=questions,
            language=str(body.get("language") or "en"),
            max_duration_s=min(
                float(body.get("max_duration_s") or self.settings.interview_max_duration_s),
                self.settings.interview_max_duration_s,
            ),
            created_at=now,
            expires_at=now + self.settings.interview_connect_timeout_s,
            job_description=body.get("job_description"),
            questions_source=source,
            max_follow_ups=(
                self.settings.interview_max_follow_ups if follow_ups is None else int(follow_ups)
            ),
            rubric=[dict(criterion) for criterion in body.get("rubric") or []],
            record_audio=bool(body.get("record")),
            webhook_url=body.get("webhook_url") or None,
        )

    async def _questions(self, body: Mapping[str, Any]) -> tuple[list[str], str]:
        """The plan's questions: given, drafted from the job description, or the default."""
        if body.get("questions"):
            return list(body["questions"]), "given"
        description = body.get("job_description")
        drafter = self._voice.drafter if self._voice is not None else None
        if not description or drafter is None:  # the local stack drafts nothing
            return list(DEFAULT_QUESTIONS), "default"
        began = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.interview_provider_timeout_s * 2):
                drafted = await drafter.draft(
                    body.get("role"), description, language=str(body.get("language") or "en")
                )
        except Exception as exc:
            log.warning("question_drafting_failed", error=repr(exc)[:300])
            raise Unavailable(
                "the interviewer could not draft questions from the job description; "
                "try again, or pass questions",
                code="question_drafting_failed",
                retry_after_s=5,
            ) from exc
        log.info(
            "questions_drafted", count=len(drafted), seconds=round(time.perf_counter() - began, 3)
        )
        return drafted, "drafted"

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
            if not self.calls:
                self._idle.set()
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
            if self.owners is not None:
                release = asyncio.get_running_loop().create_task(self._release(call))
                self._releases.add(release)
                release.add_done_callback(self._releases.discard)
            conversation = call.conversation
            evaluation = None
            if isinstance(conversation, VoiceConversation) and conversation.will_evaluate:
                call.record.evaluation = "pending"
                writer = conversation.stack.results
                assert writer is not None  # will_evaluate says there is one
                task = asyncio.get_running_loop().create_task(self._evaluate(call, writer))
                self._evaluations.add(task)
                task.add_done_callback(self._evaluations.discard)
                evaluation = task
            self.wrap_up.begin(call.record, call.recorder, evaluation, self.results_view, call.save)

    async def _release(self, call: Call) -> None:
        """Once the final record is stored, the call's lease goes (a sweeper that saw it
        ownerless before then would find the record final and leave it)."""
        assert self.owners is not None
        await call.saved()  # never a save of its own: a DELETE may have removed the record
        try:
            await self.owners.release(call.id)
        except Exception as exc:  # the lease expires by itself; the sweeper finds it final
            log.warning("interview_release_failed", interview_id=call.id, error=repr(exc))

    async def _evaluate(self, call: Call, writer: ResultsWriter) -> None:
        """Rubric results after the call, bounded in time; the record says how it went.

        Scored from the record's transcript, the one the results and the report show, so
        every quote can be found there."""
        record = call.record
        began = time.perf_counter()
        plan = {
            "role": record.role,
            "questions": record.questions,
            "language": record.language,
            "rubric": record.rubric,
        }
        transcript = [Turn(line.role, line.text) for line in record.transcript]
        try:  # a re-ask may double the time
            async with asyncio.timeout(self.settings.interview_provider_timeout_s * 4):
                scored = await writer.evaluate(plan, transcript)
        except Exception as exc:
            record.evaluation = "failed"
            log.warning("evaluation_failed", interview_id=record.id, error=repr(exc)[:300])
        else:
            record.summary, record.scores = scored.summary, scored.scores
            record.unscored, record.evaluation_notes = scored.unscored, scored.notes
            record.evaluation = "ready"
            log.info(
                "evaluation_ready",
                interview_id=record.id,
                scored=len(scored.scores),
                unscored=len(scored.unscored),
                seconds=round(time.perf_counter() - began, 3),
            )
        await call.save()

    # ---- ownership, sweeping and draining (with a shared store) -----------------------

    async def open(self) -> None:
        if self.owners is None:
            return
        await self.owners.announce(draining=False)
        self._leases = asyncio.get_running_loop().create_task(self._keep_leases())
        log.info("interview_owner_ready", instance=self.instance, url=self.owners.me.url)

    async def _keep_leases(self) -> None:
        """Renew this process's leases a few times per TTL; fail the calls of dead ones."""
        assert self.owners is not None
        interval = self.owners.ttl_s / 3
        while True:
            try:
                await self._lease_round()
            except Exception as exc:  # the store is down: the next round tries again
                log.warning("interview_lease_round_failed", error=repr(exc)[:300])
            await asyncio.sleep(interval)

    async def _lease_round(self) -> None:
        assert self.owners is not None
        await self.owners.announce(draining=self.draining)
        for interview_id in await self.owners.renew(list(self.calls)):
            call = self.calls.get(interview_id)
            if call is not None:  # this process stalled past its lease: others gave up on it
                log.error("interview_lease_lost", interview_id=interview_id)
                self._spawn_release(call.finish(InterviewStatus.FAILED, "owner_lost"))
        await self.sweep()

    async def sweep(self) -> int:
        """Mark failed the interviews whose owner's lease expired; how many this did."""
        assert self.owners is not None
        swept = 0
        for interview_id in await self.owners.orphans():
            if interview_id in self.calls or not await self.owners.take_orphan(interview_id):
                continue
            try:
                record = await self.records.load(interview_id)
            except NotFound:
                record = None
            if record is not None and not record.final:
                record.move(InterviewStatus.FAILED, reason="owner_lost")
                await self.records.save(record)
                await self.wrap_up.send_results(record, self.results_view)  # its webhook too
                swept += 1
                self._metrics.swept.inc()
                log.warning("interview_owner_lost", interview_id=interview_id)
            await self.owners.forget(interview_id)
        return swept

    def _spawn_release(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def drain(self) -> None:
        """Take no new interview from now on; the live calls go on."""
        if self.draining:
            return
        self.draining = True
        log.info("interview_draining", live=len(self.calls))
        if self.owners is not None:
            with contextlib.suppress(Exception):
                await self.owners.announce(draining=True)

    async def drained(self, timeout_s: float) -> bool:
        """Wait until no call is left, at most ``timeout_s``; True when none is."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        if self.calls:
            log.warning("interview_drain_timeout", live=len(self.calls))
        return not self.calls

    async def readiness(self) -> None:
        """The readiness probe: a draining process is not ready (no new interviews)."""
        if self.draining:
            raise RuntimeError(f"draining: {len(self.calls)} calls finishing")

    # ---- forwarding --------------------------------------------------------------------

    def forwarded_from(self, incoming: Incoming) -> ForwardedFrom | None:
        """The peer that forwarded this request; Forbidden when it claims to be forwarded
        and its signature does not verify."""
        if HEADER not in incoming.headers or self.forwarder is None:
            return None
        forwarded = self.forwarder.verify(incoming)
        if forwarded is None:
            raise Forbidden("forwarded request with a bad signature", code="forward_refused")
        return forwarded

    async def forward_to_owner(self, interview_id: str, incoming: Incoming) -> Relayed | None:
        """The owner's answer when another live process holds the call, else None (this
        process answers: it holds the call, or nobody does)."""
        if self.forwarder is None or self.owners is None or interview_id in self.calls:
            return None
        if HEADER in incoming.headers:  # forwarded once already: never again
            return None
        owner = await self.owners.owner(interview_id)
        if owner is None or owner.instance == self.instance:
            return None
        try:
            answer = await self.forwarder.forward(owner.url, incoming)
        except httpx.HTTPError as exc:
            self._metrics.forwarded.labels(outcome="unreachable").inc()
            log.warning(
                "interview_forward_failed", interview_id=interview_id, owner=owner.url,
                error=repr(exc)[:200],
            )  # fmt: skip
            raise Unavailable(
                "the process holding this call did not answer; try again",
                code="interview_owner_unreachable",
                retry_after_s=2,
            ) from exc
        self._metrics.forwarded.labels(outcome="answered").inc()
        return answer

    async def forward_start(self, incoming: Incoming) -> Relayed | None:
        """A draining process hands ``/start`` to a live peer; None: answer it here."""
        if not self.draining or self.forwarder is None or self.owners is None:
            return None
        if HEADER in incoming.headers:
            return None
        try:
            peers = await self.owners.peers()
        except Exception:
            return None
        random.shuffle(peers)
        for peer in peers:
            try:
                answer = await self.forwarder.forward(peer.url, incoming)
            except httpx.HTTPError as exc:
                log.warning("interview_start_forward_failed", peer=peer.url, error=repr(exc))
                continue
            self._metrics.forwarded.labels(outcome="answered").inc()
            return answer
        return None

    async def close(self) -> None:
        self.draining = True
        if self._leases is not None:
            self._leases.cancel()
            await asyncio.gather(self._leases, return_exceptions=True)
        for call in list(self.calls.values()):
            await call.finish(InterviewStatus.ENDED, "shutdown")
        if self._releases:  # the final records saved and the leases let go
            await asyncio.wait(set(self._releases), timeout=EVALUATION_SHUTDOWN_S)
        if self.owners is not None:
            with contextlib.suppress(Exception):
                await self.owners.withdraw()
        if self.forwarder is not None:
            await self.forwarder.aclose()
        if self._evaluations:  # a few seconds to finish scoring, then they are dropped
            await asyncio.wait(set(self._evaluations), timeout=EVALUATION_SHUTDOWN_S)
        for task in list(self._evaluations):
            task.cancel()
        if self._evaluations:
            await asyncio.gather(*self._evaluations, return_exceptions=True)
        await self.wrap_up.close()  # webhooks not yet delivered stay in the outbox
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
        return {**self.results_view(record), **await self.wrap_up.views(record)}

    def results_view(self, record: InterviewRecord) -> dict[str, Any]:
        return {
            "session_id": record.id,
            "status": record.status.value,
            "transcript": [line.view() for line in record.transcript],
            # Only a language model scores, with quotes as evidence; the local stack
            # reports measurements and invents no scores.
            "summary": record.summary,
            "scores": record.scores,
            "unscored": record.unscored,  # criteria no quote of the candidate supported
            "evaluation": record.evaluation,
            "evaluation_notes": record.evaluation_notes,
            "plan": {
                "role": record.role,
                "questions": record.questions,
                "questions_source": record.questions_source,
                "max_follow_ups": record.max_follow_ups,
                "max_duration_s": record.max_duration_s,
                "rubric": [asdict(c) for c in rubric_from(record.rubric)],
            },
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

    async def report(self, principal: Principal, interview_id: str) -> str:
        """The results as an HTML page, rendered off the event loop: a one-hour interview
        takes a few ms (bench/interview_report.py), a markup-heavy one ten times that."""
        results = await self.results(principal, interview_id)
        return await asyncio.to_thread(render_report, results)

    # ---- signaling ---------------------------------------------------------------------

    async def live_call(self, principal: Principal, interview_id: str) -> Call:
        record = await self.record(principal, interview_id)
        call = self.calls.get(interview_id)
        if call is None:
            if record.final:
                raise Conflict(
                    f"interview is {record.status.value}", code=f"interview_{record.status}"
                )
            if self.owners is not None and await self.owners.owner(interview_id) is None:
                raise Unavailable(
                    "the process that held this call is gone; the interview is about to be "
                    "marked failed: start a new one",
                    code="interview_owner_lost",
                    retry_after_s=max(1, int(self.settings.interview_owner_ttl_s)),
                )
            raise Unavailable(
                "this interview's call is held by another process and this one cannot "
                "forward to it (set INTERNAL_SECRET on every process)",
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
            await self.wrap_up.send_results(record, self.results_view)
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

    async def recording(
        self, principal: Principal, interview_id: str
    ) -> tuple[Path | None, str | None]:
        """The stored recording: (a local file to serve, or a URL to redirect to)."""
        record = await self.record(principal, interview_id)
        path, link = await self.wrap_up.recording(record)
        if path is None and link is None:
            raise NotFound("this interview has no recording", code="no_recording")
        return path, link

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
    recordings: RecordingStore | None = None,
    internal_url: str | None = None,
) -> AsyncIterator[InterviewService]:
    service = InterviewService(settings, store, metrics, conversations, recordings, internal_url)
    service.wrap_up.start()
    warming = asyncio.get_running_loop().create_task(service.warm())
    try:
        await service.open()
        yield service
    finally:
        warming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await warming
        await service.close()
