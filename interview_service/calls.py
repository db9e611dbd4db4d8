"""One live interview call: its record, its peer connection(s), its conversation, its timers.

A call is registered from ``start`` until it reaches a final state, and whatever ends
it (``end``, the connect timeout, no media, the maximum duration, ICE failure, shutdown)
goes through :meth:`Call.finish`, which releases everything it owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import av
import structlog

from backend.core.errors import Conflict, InvalidInput
from interview_service.conversation_seam import SAMPLE_RATE_IN, Conversation, WireEvent
from interview_service.peer import Peer, PeerOptions
from interview_service.recording import Recorder, TappedSource
from interview_service.records import (
    InterviewRecord,
    InterviewRecords,
    InterviewStatus,
    TranscriptLine,
)
from interview_service.voice import events

log = structlog.get_logger(__name__)

INBOUND_FRAMES = 50  # one second of 20 ms frames; older ones are dropped, never queued up
PENDING_CANDIDATES = 64
TASK_STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class CallLimits:
    connect_timeout_s: float
    idle_timeout_s: float
    max_duration_s: float
    heartbeat_s: float


class Call:
    def __init__(
        self,
        record: InterviewRecord,
        *,
        records: InterviewRecords,
        conversation: Conversation,
        peer_options: Callable[[], PeerOptions],
        limits: CallLimits,
        on_finished: Callable[[Call], None],
        recorder: Recorder | None = None,
    ) -> None:
        self.record = record
        # record: true. The one tap on each direction: inbound in peer_frame, outbound
        # around the conversation's source (what every peer connection of the call sends).
        self.recorder = recorder
        self._outbound = (
            conversation.outbound
            if recorder is None
            else TappedSource(conversation.outbound, recorder.outbound)
        )
        self._records = records
        self._conversation = conversation
        self._peer_options = peer_options
        self._limits = limits
        self._on_finished = on_finished
        self.peer: Peer | None = None
        self._signaling = asyncio.Lock()
        self._save_lock = asyncio.Lock()
        self._pending: list[Any] = []
        self._inbound: asyncio.Queue[av.AudioFrame] = asyncio.Queue(INBOUND_FRAMES)
        self._created = time.monotonic()
        self._activated: float | None = None
        self._last_media = time.monotonic()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._talk: asyncio.Task[None] | None = None
        self.frames_in = 0
        self._finished = asyncio.Event()
        self._finishing: InterviewStatus | None = None
        self._watchdog = self._spawn(self._watch())

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def conversation(self) -> Conversation:
        return self._conversation

    # ---- signaling ---------------------------------------------------------------------

    async def accept_offer(self, sdp: str) -> str:
        """Answer a browser offer; a second offer (renegotiation) gets a new peer connection."""
        async with self._signaling:
            self._ensure_live()
            peer = await self._replace_peer()
            answer = await self._fail_on_error(peer, peer.answer(sdp))
            if self.record.status is InterviewStatus.CREATED:
                self._move(InterviewStatus.CONNECTING)
            await self._flush_candidates(peer)
            return answer

    async def make_offer(self) -> str:
        """A server offer on a new peer connection (ICE restart); rtc/answer completes it."""
        async with self._signaling:
            self._ensure_live()
            peer = await self._replace_peer()
            offer = await self._fail_on_error(peer, peer.offer())
            if self.record.status is InterviewStatus.CREATED:
                self._move(InterviewStatus.CONNECTING)
            return offer

    async def accept_answer(self, sdp: str) -> None:
        async with self._signaling:
            self._ensure_live()
            if self.peer is None or not self.peer.awaiting_answer:
                raise Conflict("no server offer is waiting for an answer", code="no_pending_offer")
            await self.peer.accept_answer(sdp)
            await self._flush_candidates(self.peer)

    async def add_candidates(self, candidates: list[Any]) -> None:
        """Parsed candidates (None ends them); buffered until the peer has a remote description."""
        self._ensure_live()
        peer = self.peer
        if peer is None or not peer.has_remote_description:
            room = PENDING_CANDIDATES - len(self._pending)
            self._pending.extend(candidates[: max(room, 0)])
            return
        for candidate in candidates:
            await peer.add_candidate(candidate)

    async def _flush_candidates(self, peer: Peer) -> None:
        pending, self._pending = self._pending, []
        for candidate in pending:
            try:
                await peer.add_candidate(candidate)
            except InvalidInput:  # its request was answered long ago; the call goes on
                log.info("buffered_candidate_refused", interview_id=self.id)

    async def _replace_peer(self) -> Peer:
        old, self.peer = self.peer, None
        if old is not None:
            await old.close()
        # The candidate's voice decoded at the listener's rate, on the loop. A recorded
        # call keeps aiortc's full-band decode: the recording gets what it always did.
        rate = SAMPLE_RATE_IN if self.recorder is None else None
        options = dataclasses.replace(self._peer_options(), decode_rate=rate)
        self.peer = Peer(options, self._outbound, self)
        return self.peer

    async def _fail_on_error(self, peer: Peer, step: Any) -> str:
        try:
            result: str = await step
        except BaseException:
            if self.peer is peer:
                self.peer = None
            await peer.close()
            raise
        return result

    def _ensure_live(self) -> None:
        if self._finishing is not None:
            raise Conflict(
                f"interview is {self._finishing.value}", code="interview_" + self._finishing
            )
        if self.record.final:
            raise Conflict(
                f"interview is {self.record.status.value}", code="interview_" + self.record.status
            )

    # ---- what the peer reports ---------------------------------------------------------

    def peer_state(self, connection_state: str, ice_connection_state: str) -> None:
        if self.record.final or self._finishing is not None:
            return
        self.record.connection_state = connection_state
        self.record.ice_connection_state = ice_connection_state
        if connection_state == "connected" and self.record.status is InterviewStatus.CONNECTING:
            self._activate()
        elif connection_state == "failed" and self.record.status is InterviewStatus.CONNECTING:
            self._spawn(self.finish(InterviewStatus.FAILED, "ice_failed"))
        elif connection_state == "closed" and self.record.status is InterviewStatus.ACTIVE:
            # The candidate closed the connection (hung up, closed the tab): the call is
            # over now, not when the idle timeout notices, and a draining process can go.
            # ("failed" may still be mended by an ICE restart: the idle timeout decides.)
            self._spawn(self.finish(InterviewStatus.ENDED, "peer_closed"))
        self._spawn(self.save())

    def peer_frame(self, frame: av.AudioFrame) -> None:
        self._last_media = time.monotonic()
        self.frames_in += 1
        if self.recorder is not None:
            self.recorder.inbound(frame)
        if self._inbound.full():
            self._inbound.get_nowait()  # the conversation fell behind: drop the oldest
        self._inbound.put_nowait(frame)

    def peer_message(self, text: str) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            if json.loads(text).get("type") == "ping" and self.peer is not None:
                self.peer.send_event({"type": "pong", "ts": time.time()})

    # ---- the conversation --------------------------------------------------------------

    def _activate(self) -> None:
        self._move(InterviewStatus.ACTIVE)
        self._activated = time.monotonic()
        self._last_media = time.monotonic()
        self._talk = self._spawn(self._converse())

    async def _converse(self) -> None:
        try:
            await self._conversation.run(self._frames(), _Sink(self))
        except asyncio.CancelledError:
            if self._finishing is None:  # nobody ended the call: something cancelled it
                log.error("conversation_cancelled", interview_id=self.id)
                self.send_event({"type": "error", "code": "conversation_failed"})
            raise
        except Exception:
            log.exception("conversation_failed", interview_id=self.id)
            self.send_event({"type": "error", "code": "conversation_failed"})
            return
        # The interviewer finished its plan: the call ends by itself.
        self._spawn(self.finish(InterviewStatus.ENDED, "completed"))

    async def _frames(self) -> AsyncIterator[av.AudioFrame]:
        while True:
            yield await self._inbound.get()

    def send_event(self, event: Mapping[str, Any]) -> None:
        if self.peer is not None:
            self.peer.send_event(event)

    def add_line(self, line: TranscriptLine) -> None:
        self.record.add_line(line)
        if line.role == "candidate" and line.final and not line.interrupted:
            self.record.turns += 1

    # ---- timers ------------------------------------------------------------------------

    async def _watch(self) -> None:
        limits = self._limits
        tick = min(0.25, limits.heartbeat_s / 2)
        next_beat = time.monotonic() + limits.heartbeat_s
        while not self.record.final:
            await asyncio.sleep(tick)
            now = time.monotonic()
            status = self.record.status
            if status in (InterviewStatus.CREATED, InterviewStatus.CONNECTING):
                if now - self._created >= limits.connect_timeout_s:
                    self._spawn(self.finish(InterviewStatus.EXPIRED, "connect_timeout"))
                    return
            elif status is InterviewStatus.ACTIVE and self._activated is not None:
                if now - self._last_media >= limits.idle_timeout_s:
                    self._spawn(self.finish(InterviewStatus.ENDED, "idle_timeout"))
                    return
                if now - self._activated >= min(limits.max_duration_s, self.record.max_duration_s):
                    self._spawn(self.finish(InterviewStatus.ENDED, "max_duration"))
                    return
                if now >= next_beat:
                    next_beat = now + limits.heartbeat_s
                    self.send_event({"type": "heartbeat", "ts": time.time()})

    # ---- the end -----------------------------------------------------------------------

    def _move(self, to: InterviewStatus, reason: str | None = None) -> None:
        if self.record.move(to, reason=reason):
            self.send_event({"type": "state", "status": to.value, "reason": reason})
            log.info("interview_state", interview_id=self.id, status=to.value, reason=reason)

    async def finish(self, status: InterviewStatus, reason: str) -> None:
        """Move to a final state and release everything; a second call does nothing."""
        if self._finishing is not None or self.record.final:
            await self._finished.wait()
            return
        # The record turns final only once everything is released, so whoever reads a
        # final status knows the call's resources are gone; the browser hears it first.
        self._finishing = status
        self.send_event({"type": "state", "status": status.value, "reason": reason})
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        peer, self.peer = self.peer, None
        if peer is not None:
            await peer.close()
        if tasks:  # bounded: a task that ignores its cancellation must not hold the end
            done, stuck = await asyncio.wait(tasks, timeout=TASK_STOP_TIMEOUT_S)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved: logged where it mattered
            for task in stuck:
                log.error("call_task_stuck", interview_id=self.id, task=task.get_name())
        self.record.media.update(self._media_counters())
        self.record.move(status, reason=reason)
        log.info("interview_state", interview_id=self.id, status=status.value, reason=reason)
        self._on_finished(self)
        self._finished.set()
        await self.save()

    def _media_counters(self) -> dict[str, int]:
        counters = {"frames_in": self.frames_in}
        for name in ("frames_sent", "speech_frames_sent"):
            value = getattr(self._conversation.outbound, name, None)
            if isinstance(value, int):
                counters[name] = value
        value = getattr(self._conversation, "voiced_frames_in", None)
        if isinstance(value, int):
            counters["voiced_frames_in"] = value
        return counters

    def refresh(self) -> InterviewRecord:
        """The record with live media counters, for status reads."""
        if not self.record.final:
            self.record.media.update(self._media_counters())
        return self.record

    def save_soon(self) -> None:
        self._spawn(self.save())

    async def save(self) -> None:
        async with self._save_lock:
            try:
                await self._records.save(self.record)
            except Exception:
                log.exception("interview_save_failed", interview_id=self.id)

    async def saved(self) -> None:
        """Return once the save in progress (the final one, after finish) is done."""
        async with self._save_lock:
            pass

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


class _Sink:
    """The conversation's events: applied to the call's record, then sent to the browser."""

    def __init__(self, call: Call) -> None:
        self._call = call

    def send(self, event: WireEvent) -> None:
        record = self._call.record
        match event:
            case events.QuestionAsked(index=index):
                record.current_question = index
            case events.TurnMetrics(metrics=metrics):
                record.turn_metrics.append(dict(metrics))
            case events.InterviewerChosen(name=name, scripted=scripted):
                record.interviewer = {"name": name, "scripted": scripted}
            case events.TranscriptLine() as line:
                self._call.add_line(
                    TranscriptLine(
                        role=line.role,
                        text=line.text,
                        start=line.start,
                        end=line.end,
                        id=line.id,
                        interrupted=line.interrupted,
                    )
                )
                self._call.save_soon()
        self._call.send_event(event.to_wire())
