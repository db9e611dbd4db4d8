"""The one adapter for API Gateway's ``@connections`` management API (boto3).

Every reply and event for an API Gateway client leaves the process through
:meth:`ApiGatewaySender.post`. The boto3 client is built once; its blocking calls run on
a thread pool of this adapter's own, so they never block the event loop and at most
``concurrency`` posts are in flight (posts for different connections run side by side;
a caller keeps one connection's posts in order by awaiting them one at a time).

- 410 ``GoneException``: the client went away; ``on_gone(connection_id)`` drops its
  mapping and the post reports :attr:`PostOutcome.GONE`.
- 429 ``LimitExceededException``: bounded exponential backoff, then
  :attr:`PostOutcome.THROTTLED` so the caller falls back to a snapshot later.
- A payload over API Gateway's 128 KB limit is refused with :class:`FrameTooLarge`
  before anything is posted.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from backend.core.errors import PayloadTooLarge

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

log = structlog.get_logger(__name__)

MAX_PAYLOAD_BYTES = 128 * 1024
"""API Gateway refuses WebSocket messages larger than 128 KB."""

GoneHandler = Callable[[str], Awaitable[object]]
OutcomeHook = Callable[["PostOutcome"], None]


class FrameTooLarge(PayloadTooLarge):
    code = "frame_too_large"


class PostOutcome(StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"  # 410: the mapping was dropped
    THROTTLED = "throttled"  # 429 after every retry: send a snapshot later
    FAILED = "failed"  # anything else (network, 5xx, 403): logged, the caller decides


def check_payload(data: bytes) -> None:
    """Raise :class:`FrameTooLarge` for a message API Gateway would refuse."""
    if len(data) > MAX_PAYLOAD_BYTES:
        raise FrameTooLarge(
            f"message of {len(data)} bytes exceeds API Gateway's {MAX_PAYLOAD_BYTES}-byte "
            "(128 KB) WebSocket limit"
        )


def build_client(
    endpoint_url: str, region: str, *, pool_size: int
) -> ApiGatewayManagementApiClient:
    """One client per process: botocore's own retries are off, this module retries."""
    config = Config(
        region_name=region,
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=pool_size,
        connect_timeout=3,
        read_timeout=10,
    )
    client: ApiGatewayManagementApiClient = boto3.session.Session().client(
        "apigatewaymanagementapi", endpoint_url=endpoint_url, config=config
    )
    return client


class ApiGatewaySender:
    def __init__(
        self,
        client: ApiGatewayManagementApiClient,
        *,
        on_gone: GoneHandler,
        concurrency: int = 16,
        max_attempts: int = 5,
        base_delay_s: float = 0.05,
        max_delay_s: float = 2.0,
        on_outcome: OutcomeHook | None = None,
    ) -> None:
        self._client = client
        self._on_gone = on_gone
        self._on_outcome = on_outcome
        self._slots = asyncio.Semaphore(concurrency)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="apigw-post")
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s

    async def post(self, connection_id: str, data: bytes) -> PostOutcome:
        """Post one message; retries 429s, reports 410s. Never raises for AWS errors."""
        outcome = await self._post(connection_id, data)
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        return outcome

    async def _post(self, connection_id: str, data: bytes) -> PostOutcome:
        check_payload(data)
        for attempt in range(1, self._max_attempts + 1):
            code = await self._attempt(connection_id, data)
            if code is None:
                return PostOutcome.DELIVERED
            if code == "GoneException":
                log.info("apigw_connection_gone", connection_id=connection_id)
                await self._on_gone(connection_id)
                return PostOutcome.GONE
            if code != "LimitExceededException":
                log.warning("apigw_post_failed", connection_id=connection_id, error=code)
                return PostOutcome.FAILED
            if attempt < self._max_attempts:
                await asyncio.sleep(self._backoff(attempt))
        log.warning(
            "apigw_post_throttled", connection_id=connection_id, attempts=self._max_attempts
        )
        return PostOutcome.THROTTLED

    async def post_many(self, items: list[tuple[str, bytes]]) -> list[PostOutcome]:
        """Post to several connections concurrently (bounded); outcomes in input order."""
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self.post(cid, data)) for cid, data in items]
        return [task.result() for task in tasks]

    async def disconnect(self, connection_id: str) -> None:
        """Close a client's connection (server going away, slow consumer)."""
        async with self._slots:
            try:
                await self._run(self._client.delete_connection, ConnectionId=connection_id)
            except ClientError as exc:
                log.info("apigw_disconnect_failed", connection_id=connection_id, error=_code(exc))
            except BotoCoreError as exc:
                log.warning("apigw_disconnect_failed", connection_id=connection_id, error=str(exc))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    async def _attempt(self, connection_id: str, data: bytes) -> str | None:
        """None when delivered, else the error code (a transport failure is "Unreachable")."""
        async with self._slots:
            try:
                await self._run(
                    self._client.post_to_connection, ConnectionId=connection_id, Data=data
                )
            except ClientError as exc:
                return _code(exc)
            except BotoCoreError as exc:
                log.warning("apigw_unreachable", connection_id=connection_id, error=str(exc))
                return "Unreachable"
        return None

    async def _run(self, call: Callable[..., Any], **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: call(**kwargs))

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._max_delay_s, self._base_delay_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not crypto


def _code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if not code:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = {410: "GoneException", 429: "LimitExceededException"}.get(status or 0, "Unknown")
    return code
