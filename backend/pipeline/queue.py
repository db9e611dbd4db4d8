"""The job engine with Redis: taskiq over a Redis stream (taskiq-redis's RedisStreamBroker).

The service kicks one message per run (and one per retry); ``pipeline-backend worker``
processes consume them with at most PIPELINE_CONCURRENCY runs each. Acknowledgement is
manual and comes when the run is over, so a worker killed mid-run leaves its message
pending; after PIPELINE_JOB_IDLE_TIMEOUT_S taskiq-redis's XAUTOCLAIM hands it to another
worker, which resumes at the first step without a stored output. A run also holds a
lease that its worker extends every few seconds: a message redelivered while its lease
is alive (a long step on a live worker) is left pending, not run twice, and the live
worker's acknowledgement clears it when the run ends. Cancels travel as a flag in Redis
that the worker running the session polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any

import structlog
from redis.asyncio import Redis
from taskiq import Context, TaskiqDepends
from taskiq.acks import AckableMessage, AcknowledgeType
from taskiq.exceptions import SendTaskError
from taskiq.kicker import AsyncKicker
from taskiq.receiver import Receiver
from taskiq_redis import RedisStreamBroker

from backend.core.errors import Unavailable
from backend.core.storage.redis_pool import pool_options
from backend.core.storage.redis_store import RedisStore
from backend.pipeline.lease import Lease
from backend.pipeline.runner import Runner
from backend.pipeline.settings import PipelineSettings

log = structlog.get_logger(__name__)

TASK = "pipeline.run"
GROUP = "pipeline-workers"


class ReclaimingStreamBroker(RedisStreamBroker):
    """RedisStreamBroker whose listener reclaims idle messages on every turn.

    taskiq-redis 1.2.4's ``listen`` runs XAUTOCLAIM only after a read that returned new
    messages (``if not fetched: continue``), so on a quiet queue a dead worker's job is
    never picked up again; it also guards the claim with a lock that a SIGKILLed worker
    can leave behind (taskiq-redis issue #131). XAUTOCLAIM is atomic on its own (a claim
    resets the message's idle time), so this listener claims without a lock, at most once
    per ``reclaim_every_s``, whether or not the read found anything.
    """

    reclaim_every_s = 1.0

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        async with Redis(connection_pool=self.connection_pool) as conn:
            next_reclaim = 0.0
            while True:
                fetched: Any = await conn.xreadgroup(
                    self.consumer_group_name,
                    self.consumer_name,
                    {self.queue_name: ">"},
                    block=self.block,
                    noack=False,
                    count=self.count,
                )
                for stream, messages in fetched or []:
                    for message_id, fields in messages:
                        yield AckableMessage(
                            data=fields[b"data"],
                            ack=self._ack_generator(id=message_id, queue_name=stream),
                        )
                now = time.monotonic()
                if now < next_reclaim:
                    continue
                next_reclaim = now + self.reclaim_every_s
                claimed: Any = await conn.xautoclaim(
                    name=self.queue_name,
                    groupname=self.consumer_group_name,
                    consumername=self.consumer_name,
                    min_idle_time=self.idle_timeout,
                    count=1,
                )
                for message_id, fields in claimed[1]:
                    if fields is None:  # trimmed from the stream meanwhile
                        continue
                    log.info("pipeline_job_reclaimed", message_id=_text(message_id))
                    yield AckableMessage(
                        data=fields[b"data"],
                        ack=self._ack_generator(id=message_id, queue_name=self.queue_name),
                    )


class QueueUnavailable(Unavailable):
    code = "queue_unavailable"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def make_broker(redis_url: str, prefix: str, settings: PipelineSettings) -> RedisStreamBroker:
    return ReclaimingStreamBroker(
        redis_url,
        queue_name=f"{prefix}pipeline:jobs",
        consumer_group_name=GROUP,
        consumer_id="0",  # a group made after the first kick still sees it
        idle_timeout=int(settings.pipeline_job_idle_timeout_s * 1000),
        xread_block=1000,
        xread_count=1,  # never hold more messages than runs it can start
        maxlen=100_000,
        # Our pool's hardening: without it a connection a Redis restart killed was
        # handed out once more, and a session create after the restart answered 500.
        **pool_options(),
    )


class QueueEngine:
    """The service's side: kicks runs; workers watch the cancel flag themselves."""

    name = "taskiq"

    def __init__(self, broker: RedisStreamBroker) -> None:
        self._kicker: AsyncKicker[Any, Any] = AsyncKicker(
            TASK, broker, {"ack_type": AcknowledgeType.MANUAL.value}
        )

    @classmethod
    @contextlib.asynccontextmanager
    async def client(
        cls, redis_url: str, prefix: str, settings: PipelineSettings
    ) -> AsyncIterator[QueueEngine]:
        broker = make_broker(redis_url, prefix, settings)
        await broker.startup()
        try:
            yield cls(broker)
        finally:
            await broker.shutdown()

    async def submit(self, session_id: str) -> None:
        try:
            await self._kicker.kiq(session_id)
        except SendTaskError as exc:  # Redis is away: the caller answers 503
            log.warning("pipeline_submit_failed", session_id=session_id, error=repr(exc.__cause__))
            raise QueueUnavailable("the job queue is unavailable; try again") from None

    async def cancel(self, session_id: str, grace_s: float = 6.0) -> bool:
        return False  # the worker holding the run sees the flag within a second


class PipelineWorker:
    """One worker process's consumer: runs, leases, cancels and hand-offs."""

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        store: RedisStore,
        runner: Runner,
        settings: PipelineSettings,
    ) -> None:
        self.worker_id = f"worker-{secrets.token_hex(4)}"
        self._prefix = prefix
        self._store = store
        self._runner = runner
        runner.deps.node = self.worker_id
        self._settings = settings
        self._broker = make_broker(redis_url, prefix, settings)
        self._broker.is_worker_process = True

        async def run_session(
            session_id: str, context: Annotated[Context, TaskiqDepends()]
        ) -> None:
            await self._job(session_id, context)

        self._broker.register_task(run_session, task_name=TASK)
        self._kicker: AsyncKicker[Any, Any] = AsyncKicker(
            TASK, self._broker, {"ack_type": AcknowledgeType.MANUAL.value}
        )
        self._stopping = False

    async def serve(self, stop: asyncio.Event) -> None:
        """Consume runs until ``stop``; then hand running ones to the other workers."""
        receiver = Receiver(
            self._broker,
            max_async_tasks=self._settings.pipeline_concurrency,
            ack_type=AcknowledgeType.MANUAL,
            propagate_exceptions=False,
            wait_tasks_timeout=10.0,
        )
        log.info("pipeline_worker_started", worker=self.worker_id)
        finished = asyncio.Event()

        async def stopper() -> None:
            await stop.wait()
            self._stopping = True
            finished.set()

        try:
            async with asyncio.TaskGroup() as group:
                watcher = group.create_task(stopper())
                await receiver.listen(finished)
                watcher.cancel()
        finally:
            await self._broker.shutdown()
            log.info("pipeline_worker_stopped", worker=self.worker_id)

    async def _job(self, session_id: str, context: Annotated[Context, TaskiqDepends()]) -> None:
        lease = Lease(
            self._store.client,
            f"{self._prefix}pipeline:lease:{session_id}",
            self.worker_id,
            ttl_s=self._settings.pipeline_lease_ttl_s,
        )
        if not await lease.acquire():
            log.info(
                "pipeline_job_left_pending",
                session_id=session_id,
                holder=await lease.holder_now(),
                reason="a live worker holds the run",
            )
            return  # unacknowledged: the holder's ack clears it, or it comes back later
        cancelled = asyncio.Event()
        lost = asyncio.Event()
        crashed = False
        try:
            async with asyncio.TaskGroup() as group:
                run = group.create_task(self._runner.run(session_id, cancelled))
                group.create_task(self._watch(session_id, lease, cancelled, lost, run))
        except* Exception:
            log.exception("pipeline_job_crashed", session_id=session_id, worker=self.worker_id)
            crashed = True
        if crashed:
            await lease.release()
            return  # unacknowledged: retried after the idle timeout
        if run.cancelled() and lost.is_set():
            log.warning("pipeline_lease_lost", session_id=session_id, worker=self.worker_id)
            return
        await lease.release()
        if run.cancelled():  # this worker is stopping: another one takes over now
            await self._kicker.kiq(session_id)
            log.info("pipeline_job_handed_off", session_id=session_id, worker=self.worker_id)
        await context.ack()

    async def _watch(
        self,
        session_id: str,
        lease: Lease,
        cancelled: asyncio.Event,
        lost: asyncio.Event,
        run: asyncio.Task[str],
    ) -> None:
        """Extend the lease, notice a cancel flag, and stop the run when told to."""
        states = self._runner.deps.states
        every = self._settings.pipeline_lease_ttl_s / 3
        next_extend = asyncio.get_running_loop().time() + every
        while not run.done():
            if self._stopping:
                run.cancel()
                return
            if await states.cancel_requested(session_id):
                cancelled.set()
                run.cancel()
                return
            now = asyncio.get_running_loop().time()
            if now >= next_extend:
                next_extend = now + every
                if not await lease.extend():
                    lost.set()
                    run.cancel()
                    return
            await asyncio.sleep(0.25)
