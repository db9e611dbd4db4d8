"""Interview webhooks: which targets are allowed, how a body is signed, and the outbox.

When an interview ends, its results are put in a durable outbox in the store
(``interview:webhook:{id}``, indexed by the set ``interview:webhooks``) and every
process's :class:`WebhookOutbox` loop delivers what is due. A delivery holds a short
lease (``interview:webhook:{id}:lease``), so with Redis exactly one process sends a
given attempt, and an entry whose process died is picked up by another one once the
lease has run out. Attempts back off exponentially until a 2xx or
``WEBHOOK_MAX_ATTEMPTS``.

Targets are checked twice: at ``/start`` and again before every attempt, and the
request goes to the address that was checked (the Host header and TLS SNI name the
host), so a DNS answer that changes between the check and the connection (rebinding)
cannot point a delivery at a private address.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import structlog
from prometheus_client import CollectorRegistry, Counter

from backend.core.clock import iso_or_none, now_iso
from backend.core.storage import Store
from interview_service.webhook_targets import WebhookTargetRefused, resolve_target

log = structlog.get_logger(__name__)

PENDING_KEY = "interview:webhooks"
POLL_S = 1.0  # how often a process looks for deliveries due (sooner when it enqueued one)
MAX_PARALLEL = 8
LEASE_MARGIN_S = 5.0
ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    secret: bytes
    production: bool  # https only
    allow_private: bool  # loopback, private, link-local... (tests, on-premises receivers)
    max_attempts: int
    backoff_s: float
    backoff_max_s: float
    timeout_s: float
    retention_s: float

    def delay(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones (with jitter)."""
        base: float = min(self.backoff_s * 2.0 ** (attempts - 1), self.backoff_max_s)
        return base * random.uniform(0.8, 1.0)  # noqa: S311 - spreading retries, not secrets


def sign(secret: bytes, body: bytes) -> str:
    """``X-Signature``: ``sha256=`` and the hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def sign_timestamped(secret: bytes, timestamp: str, body: bytes) -> str:
    """``X-Signature-Timestamped``: the HMAC of ``<timestamp>.<body>``, against replays."""
    return sign(secret, timestamp.encode() + b"." + body)


@dataclass(slots=True)
class Delivery:
    """One interview's webhook: what to send, and every attempt so far."""

    interview_id: str
    url: str
    body: str
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered: bool = False
    gave_up: bool = False
    next_at: float = 0.0

    @property
    def done(self) -> bool:
        return self.delivered or self.gave_up

    def view(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "state": "delivered" if self.delivered else "failed" if self.gave_up else "pending",
            "delivered": self.delivered,
            "attempts": list(self.attempts),
            "next_attempt_at": None if self.done else iso_or_none(self.next_at),
        }

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Delivery:
        return cls(**json.loads(raw))


def waiting_view(url: str) -> dict[str, Any]:
    """The webhook of an interview that has not ended yet (or is still being scored)."""
    return {
        "url": url,
        "state": "waiting",
        "delivered": False,
        "attempts": [],
        "next_attempt_at": None,
    }


class WebhookOutbox:
    """The durable outbox in the store, and this process's delivery loop."""

    def __init__(
        self, store: Store, policy: WebhookPolicy, registry: CollectorRegistry | None = None
    ) -> None:
        self._store = store
        self._policy = policy
        self._attempts = Counter(
            "interview_webhook_attempts_total",
            "Webhook attempts by outcome: delivered, retry (failed, another will come), gave_up",
            ["outcome"],
            registry=registry,
        )
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(policy.timeout_s, connect=min(policy.timeout_s, 5.0)),
            follow_redirects=False,
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def _key(interview_id: str) -> str:
        return f"interview:webhook:{interview_id}"

    async def check(self, url: str) -> None:
        """At /start: refuse a URL that could never be delivered to."""
        if not self._policy.secret:
            raise WebhookTargetRefused(
                "webhooks are off on this server (no WEBHOOK_SECRET to sign them with)"
            )
        await resolve_target(
            url, production=self._policy.production, allow_private=self._policy.allow_private
        )

    async def enqueue(self, interview_id: str, url: str, body: bytes) -> None:
        delivery = Delivery(interview_id, url, body.decode(), next_at=time.time())
        ttl = self._policy.retention_s
        await self._store.put(self._key(interview_id), delivery.to_json(), ttl_s=ttl)
        await self._store.add_members(PENDING_KEY, interview_id, ttl_s=ttl)
        self._wake.set()
        log.info("webhook_queued", interview_id=interview_id)

    async def view(self, interview_id: str) -> dict[str, Any] | None:
        raw = await self._store.get(self._key(interview_id))
        return None if raw is None else Delivery.from_json(raw).view()

    async def remove(self, interview_id: str) -> None:
        await self._store.remove_members(PENDING_KEY, interview_id)
        await self._store.delete(self._key(interview_id))
        await self._store.delete(self._key(interview_id) + ":lease")

    # ---- the delivery loop -------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook-outbox")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self._http.is_closed:
            await self._http.aclose()

    async def _run(self) -> None:
        gate = asyncio.Semaphore(MAX_PARALLEL)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await self._wake.wait()
            self._wake.clear()
            try:
                pending = await self._store.members(PENDING_KEY)
            except Exception as exc:  # the store is away: try again next round
                log.warning("webhook_outbox_unreadable", error=repr(exc)[:ERROR_CHARS])
                continue
            if pending:
                await asyncio.gather(*(self._attempt(i, gate) for i in sorted(pending)))

    async def _attempt(self, interview_id: str, gate: asyncio.Semaphore) -> None:
        key = self._key(interview_id)
        try:
            raw = await self._store.get(key)
            if raw is None:  # deleted, or past its retention
                await self._store.remove_members(PENDING_KEY, interview_id)
                return
            delivery = Delivery.from_json(raw)
            if delivery.done:
                await self._store.remove_members(PENDING_KEY, interview_id)
                return
            if delivery.next_at > time.time():
                return
            lease = self._policy.timeout_s * 2 + LEASE_MARGIN_S
            if not await self._store.put_if_absent(key + ":lease", b"1", ttl_s=lease):
                return  # another process is sending it right now
            try:
                async with gate:
                    await self._send(delivery)
            finally:
                await self._store.delete(key + ":lease")
        except Exception:
            log.exception("webhook_outbox_failed", interview_id=interview_id)

    async def _send(self, delivery: Delivery) -> None:
        # Fresh state: an attempt by another process may have landed since the first read.
        raw = await self._store.get(self._key(delivery.interview_id))
        if raw is None:
            return
        delivery = Delivery.from_json(raw)
        if delivery.done or delivery.next_at > time.time():
            return
        attempt: dict[str, Any] = {"at": now_iso()}
        began = time.perf_counter()
        try:
            status = await self._post(delivery)
            attempt["status"] = status
            if not 200 <= status < 300:
                attempt["error"] = f"answered {status}"
        except WebhookTargetRefused as exc:
            attempt["status"] = None
            attempt["error"] = exc.message
        except httpx.HTTPError as exc:
            attempt["status"] = None
            attempt["error"] = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
        delivery.attempts.append(attempt)
        delivery.delivered = "error" not in attempt
        if not delivery.delivered:
            if len(delivery.attempts) >= self._policy.max_attempts:
                delivery.gave_up = True
            else:
                delivery.next_at = time.time() + self._policy.delay(len(delivery.attempts))
        outcome = "delivered" if delivery.delivered else "gave_up" if delivery.gave_up else "retry"
        self._attempts.labels(outcome=outcome).inc()
        log.info(
            "webhook_attempt",
            interview_id=delivery.interview_id,
            attempt=len(delivery.attempts),
            status=attempt["status"],
            delivered=delivery.delivered,
            gave_up=delivery.gave_up,
            seconds=round(time.perf_counter() - began, 3),
        )
        key = self._key(delivery.interview_id)
        if await self._store.get(key) is None:
            return  # deleted while it was being sent: leave nothing behind
        await self._store.put(key, delivery.to_json(), ttl_s=self._policy.retention_s)
        if delivery.done:
            await self._store.remove_members(PENDING_KEY, delivery.interview_id)

    async def _post(self, delivery: Delivery) -> int:
        """POST to an address checked just now; Host and SNI carry the URL's host name."""
        addresses = await resolve_target(
            delivery.url,
            production=self._policy.production,
            allow_private=self._policy.allow_private,
        )
        parts = urlsplit(delivery.url)
        host = parts.hostname or ""
        body = delivery.body.encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Host": parts.netloc.rsplit("@", 1)[-1],
            "User-Agent": "pipeline-backend-webhooks/1",
            "X-Signature": sign(self._policy.secret, body),
            "X-Signature-Timestamped": sign_timestamped(self._policy.secret, timestamp, body),
            "X-Webhook-Id": delivery.interview_id,
            "X-Webhook-Timestamp": timestamp,
            "X-Webhook-Attempt": str(len(delivery.attempts) + 1),
        }
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        for index, address in enumerate(addresses):  # each checked address, in DNS order
            pinned = f"[{address}]" if ":" in address else address
            if parts.port is not None:
                pinned += f":{parts.port}"
            try:
                response = await self._http.post(
                    urlunsplit(parts._replace(netloc=pinned)),
                    content=body,
                    headers=headers,
                    extensions=extensions,
                )
            except httpx.ConnectError:
                if index == len(addresses) - 1:
                    raise
                continue
            return response.status_code
        raise AssertionError("resolve_target returns at least one address")
