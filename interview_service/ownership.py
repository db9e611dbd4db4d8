"""This process's leases on its calls in a shared store (:mod:`owners`), renewed a few
times per TTL; the calls of processes that died are marked failed (swept), and a call's
lease goes once its final record is stored. Only with a shared store (Redis)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import structlog
from prometheus_client import Counter

from backend.core.errors import NotFound
from backend.core.storage import Store
from interview_service.calls import Call
from interview_service.live_calls import LiveCalls
from interview_service.owners import Instance, Owners
from interview_service.records import InterviewRecords, InterviewStatus
from interview_service.results import results_view
from interview_service.settings import InterviewSettings
from interview_service.wrap_up import WrapUp

log = structlog.get_logger(__name__)

SHUTDOWN_WAIT_S = 5.0


def shared_owners(
    settings: InterviewSettings, store: Store, instance: str, internal_url: str | None
) -> Owners | None:
    """A lease per call only where other processes can see it (a shared store)."""
    if store.name == "memory":
        return None
    url = settings.internal_url or internal_url or "http://127.0.0.1:8000"
    return Owners(store, Instance(instance, url), ttl_s=settings.interview_owner_ttl_s)


class Ownership:
    def __init__(
        self,
        owners: Owners,
        calls: LiveCalls,
        records: InterviewRecords,
        wrap_up: WrapUp,
        swept: Counter,
    ) -> None:
        self.owners = owners
        self._calls = calls
        self._records = records
        self._wrap_up = wrap_up
        self._swept = swept
        self._leases: asyncio.Task[None] | None = None
        self._releases: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        await self.owners.announce(draining=False)
        self._leases = asyncio.get_running_loop().create_task(self._keep_leases())
        me = self.owners.me
        log.info("interview_owner_ready", instance=me.instance, url=me.url)

    async def claim(self, call: Call) -> None:
        """Lease a new call; when the store refuses, the call ends failed."""
        try:
            await self.owners.claim(call.id)
        except Exception:
            await call.finish(InterviewStatus.FAILED, "owner_unrecorded")
            raise

    async def _keep_leases(self) -> None:
        """Renew this process's leases a few times per TTL; fail the calls of dead ones."""
        interval = self.owners.ttl_s / 3
        while True:
            try:
                await self.lease_round()
            except Exception as exc:  # the store is down: the next round tries again
                log.warning("interview_lease_round_failed", error=repr(exc)[:300])
            await asyncio.sleep(interval)

    async def lease_round(self) -> None:
        await self.owners.announce(draining=self._calls.draining)
        for interview_id in await self.owners.renew(list(self._calls)):
            call = self._calls.get(interview_id)
            if call is not None:  # this process stalled past its lease: others gave up on it
                log.error("interview_lease_lost", interview_id=interview_id)
                self._spawn(call.finish(InterviewStatus.FAILED, "owner_lost"))
        await self.sweep()

    async def sweep(self) -> int:
        """Mark failed the interviews whose owner's lease expired; how many this did."""
        swept = 0
        for interview_id in await self.owners.orphans():
            if interview_id in self._calls or not await self.owners.take_orphan(interview_id):
                continue
            try:
                record = await self._records.load(interview_id)
            except NotFound:
                record = None
            if record is not None and not record.final:
                record.move(InterviewStatus.FAILED, reason="owner_lost")
                await self._records.save(record)
                await self._wrap_up.send_results(record, results_view)  # its webhook too
                swept += 1
                self._swept.inc()
                log.warning("interview_owner_lost", interview_id=interview_id)
            await self.owners.forget(interview_id)
        return swept

    def release(self, call: Call) -> None:
        """Let the finished call's lease go once its final record is stored (a sweeper
        that saw it ownerless before then would find the record final and leave it)."""
        self._spawn(self._release(call))

    async def _release(self, call: Call) -> None:
        await call.saved()  # never a save of its own: a DELETE may have removed the record
        try:
            await self.owners.release(call.id)
        except Exception as exc:  # the lease expires by itself; the sweeper finds it final
            log.warning("interview_release_failed", interview_id=call.id, error=repr(exc))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def announce_draining(self) -> None:
        with contextlib.suppress(Exception):
            await self.owners.announce(draining=True)

    async def stop_renewing(self) -> None:
        """Before the calls are ended at shutdown: no round runs while they are."""
        if self._leases is not None:
            self._leases.cancel()
            await asyncio.gather(self._leases, return_exceptions=True)

    async def close(self) -> None:
        """After the calls are ended: their final records saved and leases let go, then
        this process leaves the list."""
        if self._releases:
            await asyncio.wait(set(self._releases), timeout=SHUTDOWN_WAIT_S)
        with contextlib.suppress(Exception):
            await self.owners.withdraw()
