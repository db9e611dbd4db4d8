"""Forwarding a signaling request to the process that holds the call, over internal HTTP.

The forwarded request keeps the caller's credentials (the owner authenticates and
rate-limits it as if it had come straight in) and gains one header,
``X-Interview-Forwarded: <instance> <client ip> <unix time> <signature>``: an
HMAC-SHA256 under ``INTERNAL_SECRET`` of the method, the path, the client's address,
the time and the body's SHA-256. The owner refuses a forwarded request whose signature
does not verify or whose time is more than ``MAX_SKEW_S`` away, never forwards one
again, and takes the client's address from it for its per-IP limits. The owner's
status, body, ``Content-Type`` and ``Retry-After`` come back unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
import structlog

log = structlog.get_logger(__name__)

HEADER = "x-interview-forwarded"
MAX_SKEW_S = 30.0
# The caller's headers the owner needs; everything else (Host, Content-Length, hop by hop)
# is the forwarding client's own business.
PASSED_HEADERS = ("authorization", "x-api-key", "content-type", "x-request-id", "user-agent")
RETURNED_HEADERS = ("content-type", "retry-after")


@dataclass(frozen=True, slots=True)
class Incoming:
    """A request as the web layer received it (no framework types cross this line)."""

    method: str
    path: str  # with its query string
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    client: str | None


@dataclass(frozen=True, slots=True)
class Relayed:
    """The owner's answer, to be returned as is."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class ForwardedFrom:
    instance: str
    client: str | None


class Forwarder:
    def __init__(self, secret: str, instance: str, *, timeout_s: float) -> None:
        self._secret = secret.encode()
        self._instance = instance
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(2.0, timeout_s)),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            follow_redirects=False,
            trust_env=False,  # an internal address never goes through HTTP(S)_PROXY
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _signature(self, method: str, path: str, client: str, at: str, body: bytes) -> str:
        digest = hashlib.sha256(body).hexdigest()
        message = "\n".join((method.upper(), path, client, at, digest)).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def header(self, incoming: Incoming, *, now: float | None = None) -> str:
        at = str(int(time.time() if now is None else now))
        client = incoming.client or "-"
        signature = self._signature(incoming.method, incoming.path, client, at, incoming.body)
        return f"{self._instance} {client} {at} {signature}"

    def verify(self, incoming: Incoming, *, now: float | None = None) -> ForwardedFrom | None:
        """Who forwarded this request, or None when its header is missing or not genuine."""
        parts = incoming.headers.get(HEADER, "").split(" ")
        if len(parts) != 4 or not parts[2].isdigit():
            return None
        instance, client, at, signature = parts
        now = time.time() if now is None else now
        if abs(now - int(at)) > MAX_SKEW_S:
            return None
        expected = self._signature(incoming.method, incoming.path, client, at, incoming.body)
        if not hmac.compare_digest(expected, signature):
            return None
        return ForwardedFrom(instance, None if client == "-" else client)

    async def forward(self, base_url: str, incoming: Incoming) -> Relayed:
        """The owner's answer; httpx errors (unreachable, timed out) are the caller's."""
        headers = {k: v for k in PASSED_HEADERS if (v := incoming.headers.get(k)) is not None}
        headers[HEADER] = self.header(incoming)
        response = await self._http.request(
            incoming.method, base_url + incoming.path, headers=headers, content=incoming.body
        )
        returned = {k: v for k in RETURNED_HEADERS if (v := response.headers.get(k)) is not None}
        return Relayed(response.status_code, returned, response.content)
