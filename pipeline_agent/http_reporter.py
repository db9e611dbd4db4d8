"""Reporting over HTTP: ``POST /api/sessions/{id}/events`` with an API key or a token.

Retries what is safe to retry: 503 (the service's store is unreachable: nothing was
published) and 429 (rate limited), waiting at least ``Retry-After``; and a connection
that could not be made. A request that may have reached the service (a read timeout) is
not repeated, so an event is not published twice.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from pipeline_agent.reporter import ReportError, Status
from pipeline_agent.retry import RetryPolicy, parse_retry_after

RETRIED_STATUSES = frozenset({429, 503})


def _headers(api_key: str | None, token: str | None) -> dict[str, str]:
    if api_key and token:
        raise ValueError("give an API key or a token, not both")
    if api_key:
        return {"X-API-Key": api_key}
    if token:
        return {"Authorization": f"Bearer {token}"}
    return {}  # a development service with auth off


def _body(
    agent: str,
    status: Status,
    progress: float | None,
    message: str | None,
    data: dict[str, Any] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"agent": agent, "status": status}
    if progress is not None:
        body["progress"] = progress
    if message is not None:
        body["message"] = message
    if data is not None:
        body["data"] = data
    return body


def _refusal(response: httpx.Response) -> ReportError:
    code, message = f"http_{response.status_code}", response.text[:500]
    try:
        error = response.json().get("error", {})
        code, message = str(error.get("code", code)), str(error.get("message", message))
    except (ValueError, AttributeError):
        pass
    return ReportError(message, code=code, status=response.status_code)


class HttpReporter:
    """One connection pool to the service; use as ``async with HttpReporter(...) as r``."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers=_headers(api_key, token),
            timeout=timeout_s,
            transport=transport,
        )
        self._retry = retry or RetryPolicy()
        self.retries = 0
        """Tries that were repeated, over this reporter's life (for logs and tests)."""

    async def report(
        self,
        session: str,
        agent: str,
        status: Status,
        progress: float | None = None,
        message: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        path = f"/api/sessions/{quote(session, safe='')}/events"
        body = _body(agent, status, progress, message, data)
        started = time.monotonic()
        for attempt in range(1, self._retry.attempts + 1):
            retry_after: float | None = None
            try:
                response = await self._client.post(path, json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = ReportError(f"cannot reach the service: {exc}", code="unreachable")
            else:
                if response.status_code == 202:
                    return int(response.json()["seq"])
                if response.status_code not in RETRIED_STATUSES:
                    raise _refusal(response)
                failure = _refusal(response)
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            delay = self._retry.next_delay(attempt, started, time.monotonic(), retry_after)
            if delay is None:
                raise failure
            self.retries += 1
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpReporter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def report(
    session: str,
    agent: str,
    status: Status,
    progress: float | None = None,
    message: str | None = None,
    *,
    url: str = "http://127.0.0.1:8000",
    api_key: str | None = None,
    token: str | None = None,
    data: dict[str, Any] | None = None,
    retry: RetryPolicy | None = None,
) -> int:
    """One event from synchronous code (a script, a worker loop); returns its ``seq``.

    Runs its own event loop: from async code use :class:`HttpReporter` instead.
    """

    async def once() -> int:
        async with HttpReporter(url, api_key=api_key, token=token, retry=retry) as reporter:
            return await reporter.report(session, agent, status, progress, message, data)

    return asyncio.run(once())
