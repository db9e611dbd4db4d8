"""Which process answers a signaling request: this one, the process that holds the call
(forwarded to it, signed, :mod:`forwarding`), or, for ``/start`` on a draining process,
a live peer. Only with a shared store and ``INTERNAL_SECRET``."""

from __future__ import annotations

import random

import httpx
import structlog
from prometheus_client import Counter

from backend.core.errors import Forbidden, Unavailable
from interview_service.forwarding import HEADER, ForwardedFrom, Forwarder, Incoming, Relayed
from interview_service.live_calls import LiveCalls
from interview_service.owners import Owners
from interview_service.settings import InterviewSettings

log = structlog.get_logger(__name__)


def signed_forwarder(settings: InterviewSettings, instance: str) -> Forwarder | None:
    """Forwarding only with the secret that authenticates it."""
    if not settings.internal_secret or not settings.internal_secret.get_secret_value():
        return None
    return Forwarder(
        settings.internal_secret.get_secret_value(),
        instance,
        timeout_s=settings.internal_forward_timeout_s,
    )


class Routing:
    def __init__(
        self, forwarder: Forwarder, owners: Owners, calls: LiveCalls, forwarded: Counter
    ) -> None:
        self.forwarder = forwarder
        self._owners = owners
        self._calls = calls
        self._forwarded = forwarded

    def forwarded_from(self, incoming: Incoming) -> ForwardedFrom | None:
        """The peer that forwarded this request; Forbidden when it claims to be forwarded
        and its signature does not verify."""
        if HEADER not in incoming.headers:
            return None
        forwarded = self.forwarder.verify(incoming)
        if forwarded is None:
            raise Forbidden("forwarded request with a bad signature", code="forward_refused")
        return forwarded

    async def to_owner(self, interview_id: str, incoming: Incoming) -> Relayed | None:
        """The owner's answer when another live process holds the call, else None (this
        process answers: it holds the call, or nobody does)."""
        if interview_id in self._calls:
            return None
        if HEADER in incoming.headers:  # forwarded once already: never again
            return None
        owner = await self._owners.owner(interview_id)
        if owner is None or owner.instance == self._owners.me.instance:
            return None
        try:
            answer = await self.forwarder.forward(owner.url, incoming)
        except httpx.HTTPError as exc:
            self._forwarded.labels(outcome="unreachable").inc()
            log.warning(
                "interview_forward_failed", interview_id=interview_id, owner=owner.url,
                error=repr(exc)[:200],
            )  # fmt: skip
            raise Unavailable(
                "the process holding this call did not answer; try again",
                code="interview_owner_unreachable",
                retry_after_s=2,
            ) from exc
        self._forwarded.labels(outcome="answered").inc()
        return answer

    async def start_elsewhere(self, incoming: Incoming) -> Relayed | None:
        """A draining process hands ``/start`` to a live peer; None: answer it here."""
        if not self._calls.draining or HEADER in incoming.headers:
            return None
        try:
            peers = await self._owners.peers()
        except Exception:
            return None
        random.shuffle(peers)
        for peer in peers:
            try:
                answer = await self.forwarder.forward(peer.url, incoming)
            except httpx.HTTPError as exc:
                log.warning("interview_start_forward_failed", peer=peer.url, error=repr(exc))
                continue
            self._forwarded.labels(outcome="answered").inc()
            return answer
        return None
