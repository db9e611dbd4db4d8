"""The @connections adapter: moto for what gets posted, Stubber for 410 and 429."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.stub import Stubber

from backend.gateway.apigw_sender import (
    MAX_PAYLOAD_BYTES,
    ApiGatewaySender,
    FrameTooLarge,
    PostOutcome,
    build_client,
)
from tests.support.moto_apigw import REGION, MotoConnections


class GoneLog:
    def __init__(self) -> None:
        self.dropped: list[str] = []

    async def __call__(self, connection_id: str) -> None:
        self.dropped.append(connection_id)


@pytest.fixture
def gone() -> GoneLog:
    return GoneLog()


@pytest.fixture
def stubbed(aws_credentials: None, gone: GoneLog) -> Iterator[tuple[ApiGatewaySender, Stubber]]:
    client = build_client(
        "https://example.execute-api.us-east-1.amazonaws.com/dev", REGION, pool_size=4
    )
    sender = ApiGatewaySender(client, on_gone=gone, max_attempts=3, base_delay_s=0.001)
    with Stubber(client) as stubber:
        yield sender, stubber
    sender.close()


def _message(i: int) -> bytes:
    return json.dumps({"type": "agent_status", "seq": i}).encode()


async def test_posts_reach_the_connections_backend_in_order(
    moto_connections: MotoConnections, gone: GoneLog
) -> None:
    client = build_client(moto_connections.endpoint, REGION, pool_size=4)
    sender = ApiGatewaySender(client, on_gone=gone, concurrency=4)
    try:
        for seq in range(1, 6):
            assert await sender.post("conn-a", _message(seq)) is PostOutcome.DELIVERED
        outcomes = await sender.post_many([(f"conn-{n}", _message(7)) for n in "bcd"])
    finally:
        sender.close()
    assert outcomes == [PostOutcome.DELIVERED] * 3
    assert [m["seq"] for m in moto_connections.messages("conn-a")] == [1, 2, 3, 4, 5]
    for n in "bcd":
        assert moto_connections.messages(f"conn-{n}") == [{"type": "agent_status", "seq": 7}]
    assert gone.dropped == []


async def test_gone_connection_drops_its_mapping(
    stubbed: tuple[ApiGatewaySender, Stubber], gone: GoneLog
) -> None:
    sender, stubber = stubbed
    stubber.add_client_error(
        "post_to_connection", service_error_code="GoneException", http_status_code=410
    )
    assert await sender.post("conn-x", b'{"type":"pong"}') is PostOutcome.GONE
    assert gone.dropped == ["conn-x"]
    stubber.assert_no_pending_responses()


async def test_throttling_is_retried_then_delivered(
    stubbed: tuple[ApiGatewaySender, Stubber], gone: GoneLog
) -> None:
    sender, stubber = stubbed
    for _ in range(2):
        stubber.add_client_error(
            "post_to_connection", service_error_code="LimitExceededException", http_status_code=429
        )
    stubber.add_response("post_to_connection", {}, {"ConnectionId": "conn-y", "Data": b"{}"})
    assert await sender.post("conn-y", b"{}") is PostOutcome.DELIVERED
    stubber.assert_no_pending_responses()
    assert gone.dropped == []


async def test_throttling_past_the_retry_budget_falls_back(
    stubbed: tuple[ApiGatewaySender, Stubber], gone: GoneLog
) -> None:
    sender, stubber = stubbed
    for _ in range(3):
        stubber.add_client_error(
            "post_to_connection", service_error_code="LimitExceededException", http_status_code=429
        )
    assert await sender.post("conn-z", b"{}") is PostOutcome.THROTTLED
    stubber.assert_no_pending_responses()  # exactly max_attempts tries, no more
    assert gone.dropped == []


async def test_other_errors_are_reported_not_raised(
    stubbed: tuple[ApiGatewaySender, Stubber],
) -> None:
    sender, stubber = stubbed
    stubber.add_client_error(
        "post_to_connection", service_error_code="ForbiddenException", http_status_code=403
    )
    assert await sender.post("conn-f", b"{}") is PostOutcome.FAILED


async def test_oversized_payload_is_refused_before_posting(
    stubbed: tuple[ApiGatewaySender, Stubber],
) -> None:
    sender, stubber = stubbed
    with pytest.raises(FrameTooLarge, match="128 KB"):
        await sender.post("conn-big", b"x" * (MAX_PAYLOAD_BYTES + 1))
    stubber.assert_no_pending_responses()  # nothing was queued and nothing was called
