"""Keep API Gateway connections from hitting the 10-minute idle timeout.

One process of the fleet at a time (a lease in the store) posts a small
``{"type": "keepalive"}`` to every registered connection every ``interval_s`` (default
540 s, under the 600 s limit). The same sweep forgets connections whose record expired
without a DISCONNECT. Clients should still send ``{"action": "ping"}`` now and then:
API Gateway counts client traffic as activity in every case.
"""

from __future__ import annotations

import asyncio
import os
import time

import structlog

from backend.core.errors import DomainError
from backend.core.storage import Store
from backend.gateway.apigw_sender import ApiGatewaySender
from backend.gateway.registry import ConnectionRegistry

log = structlog.get_logger(__name__)

LEASE_KEY = "apigw:keepalive:lease"
KEEPALIVE = b'{"type":"keepalive"}'
HANDSHAKE_GRACE_S = 30.0
"""A connection this young may still be in its $connect: posting to it would get 410."""


class KeepAlive:
    def __init__(
        self,
        store: Store,
        registry: ConnectionRegistry,
        sender: ApiGatewaySender,
        *,
        interval_s: float,
    ) -> None:
        self._store = store
        self._registry = registry
        self._sender = sender
        self._interval_s = interval_s
        self._owner = f"{os.getpid()}:{id(self)}".encode()

    async def run(self) -> None:
        """Forever: every interval, the process that wins the lease sweeps."""
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                if await self._store.put_if_absent(
                    LEASE_KEY, self._owner, ttl_s=self._interval_s * 0.9
                ):
                    await self.sweep()
            except DomainError as exc:  # the store is down: try again next interval
                log.warning("apigw_keepalive_skipped", error=exc.message)

    async def sweep(self) -> int:
        """Post a keep-alive to every established connection; returns how many."""
        ids = sorted(await self._registry.connections())
        records = await self._registry.records(ids) if ids else {}
        cutoff = time.time() - HANDSHAKE_GRACE_S
        targets = []
        for cid, record in records.items():
            if record is None:
                await self._registry.forget_expired(cid)
            elif record.connected_at <= cutoff:
                targets.append((cid, KEEPALIVE))
        await self._sender.post_many(targets)
        log.info("apigw_keepalive_sweep", connections=len(targets))
        return len(targets)
