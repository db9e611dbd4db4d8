"""Pure ASGI middleware: a request id bound to every log line, one summary line per request.

Pure ASGI (not BaseHTTPMiddleware) so that WebSockets and streaming responses pass
through untouched and contextvars reach the endpoint.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.metrics import Metrics

log = structlog.get_logger("backend.access")

_VALID_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_QUIET_PATHS = frozenset({"/health", "/api/health", "/metrics"})


def request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is a sane one, else a new id."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1")
            if _VALID_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        status = 500
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        self.metrics.http_in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.http_in_flight.dec()
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_latency.labels(method, route).observe(elapsed)
            level = "debug" if scope["path"] in _QUIET_PATHS and status < 400 else "info"
            client = scope.get("client")
            getattr(log, level)(
                "request",
                method=method,
                path=scope["path"],
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                client=client[0] if client else None,  # the real one behind trusted proxies
                scheme=scope.get("scheme"),
            )
            structlog.contextvars.clear_contextvars()
