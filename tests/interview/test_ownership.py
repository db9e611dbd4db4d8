"""Who holds a call, in a real Redis: leases, forwarding, the sweeper and the drain.

Media is not needed here (a started interview already has its call on one process); the
whole thing behind a load balancer with WebRTC callers is tests/webrtc/test_load_balancer.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from backend.app.settings import Settings
from interview_service.forwarding import HEADER, Forwarder, Incoming
from interview_service.records import InterviewRecord, InterviewStatus
from tests.conftest import RunningApp
from tests.support.uvicorn_process import ServiceProcess

SECRET = "ownership-test-secret-0123456789abcdef"


def _redis_settings(
    make_settings: Callable[..., Settings], redis_url: str, prefix: str, **extra: Any
) -> Settings:
    return make_settings(
        redis_url=redis_url,
        redis_prefix=prefix,
        internal_secret=SECRET,
        internal_url="http://127.0.0.1:9",  # nobody forwards to an in-process app here
        **extra,
    )


async def _start(client: httpx.AsyncClient, user: str = "c") -> str:
    response = await client.post("/api/interview/start", json={"user_id": user})
    assert response.status_code == 201, response.text
    return str(response.json()["session_id"])


async def test_the_owner_is_leased_in_redis_and_let_go_at_the_end(
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
) -> None:
    app: RunningApp = await start_app(
        _redis_settings(make_settings, redis_url, redis_prefix, interview_owner_ttl_s=5)
    )
    interview = await _start(app.client)
    client = redis.Redis.from_url(redis_url)
    try:
        owner = await client.get(f"{redis_prefix}interview:{interview}:owner")
        assert owner is not None
        assert b'"url": "http://127.0.0.1:9"' in owner
        assert 0 < await client.pttl(f"{redis_prefix}interview:{interview}:owner") <= 5000
        assert await client.sismember(f"{redis_prefix}interview:owned", interview)
        await app.client.post(f"/api/interview/{interview}/end")
        deadline = time.monotonic() + 5
        while await client.exists(f"{redis_prefix}interview:{interview}:owner"):
            assert time.monotonic() < deadline, "the lease outlived the call"
            await asyncio.sleep(0.05)
        assert not await client.sismember(f"{redis_prefix}interview:owned", interview)
    finally:
        await client.aclose()


async def test_the_sweeper_fails_the_interviews_of_a_dead_owner_once(
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
) -> None:
    # leases renewed every 100 s: no background round sweeps before these two do
    settings = _redis_settings(make_settings, redis_url, redis_prefix, interview_owner_ttl_s=300)
    first: RunningApp = await start_app(settings)
    second: RunningApp = await start_app(settings)
    # a call some other process held: its record and its listing, its lease expired
    now = time.time()
    record = InterviewRecord("orphan1", "c", "anonymous", None, [], "en", 60, now, now + 60)
    record.move(InterviewStatus.CONNECTING)
    interviews = first.services.interviews
    await interviews.records.create(record)
    await first.services.store.add_members("interview:owned", record.id)
    swept = [
        await first.services.interviews.sweep(),
        await second.services.interviews.sweep(),
    ]
    assert sorted(swept) == [0, 1]  # exactly one process marks it
    status = (await second.client.get("/api/interview/orphan1/status")).json()
    assert status["status"] == "failed"
    assert status["end_reason"] == "owner_lost"
    assert "orphan1" not in await first.services.store.members("interview:owned")


async def test_a_lease_lost_to_a_stall_ends_the_call_failed(
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
) -> None:
    app: RunningApp = await start_app(_redis_settings(make_settings, redis_url, redis_prefix))
    interview = await _start(app.client)
    # the lease ran out while this process was stalled (nobody renewed it)
    await app.services.store.delete(f"interview:{interview}:owner")
    await app.services.interviews._lease_round()
    deadline = time.monotonic() + 5
    while (status := (await app.client.get(f"/api/interview/{interview}/status")).json())[
        "status"
    ] != "failed":
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.05)
    assert status["end_reason"] == "owner_lost"


@pytest.fixture
def owner_process(redis_url: str, redis_prefix: str) -> Iterator[ServiceProcess]:
    service = ServiceProcess(
        {
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": redis_prefix,
            "INTERNAL_SECRET": SECRET,
            "INTERVIEW_CONVERSATION": "greeter",
            "RATE_LIMITS_ENABLED": "false",
            "PIPELINE_ENGINE": "off",
            "INTERVIEW_OWNER_TTL_S": "2",
        }
    )
    service.env["INTERNAL_URL"] = service.base_url
    service.start()
    try:
        yield service
    finally:
        service.terminate()
        time.sleep(0.2)
        service.stop()  # the second SIGTERM: no drain


async def test_signaling_on_another_process_is_answered_by_the_owner(
    owner_process: ServiceProcess,
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
) -> None:
    other: RunningApp = await start_app(
        _redis_settings(make_settings, redis_url, redis_prefix, interview_owner_ttl_s=2)
    )
    async with httpx.AsyncClient(base_url=owner_process.base_url) as owner:
        interview = await _start(owner)
        # the owner's own answers come back unchanged: 409 no_pending_offer, 400, 201
        answer = await other.client.post(
            f"/api/interview/{interview}/rtc/answer", json={"sdp": "v=0\r\n", "type": "answer"}
        )
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["code"] == "no_pending_offer"
        bad = await other.client.post(
            f"/api/interview/{interview}/rtc/offer", json={"sdp": "nonsense", "type": "offer"}
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "invalid_sdp"
        line = await other.client.post(
            f"/api/interview/{interview}/transcript", json={"role": "candidate", "text": "hi"}
        )
        assert line.status_code == 201, line.text
        ended = await other.client.post(f"/api/interview/{interview}/end")
        assert ended.status_code == 200, ended.text
        assert ended.json()["end_reason"] == "ended_by_client"
        # the owner itself says so: it held the call and ended it
        status = (await owner.get(f"/api/interview/{interview}/status")).json()
        assert status["status"] == "ended"
        metrics = (await owner.get("/metrics")).text
        assert "interview_calls_live 0.0" in metrics
        results = (await other.client.get(f"/api/interview/{interview}/results")).json()
        assert [line["text"] for line in results["transcript"]] == ["hi"]
        # DELETE from elsewhere ends the owner's call first: nothing brings the record back
        doomed = await _start(owner, "c-delete")
        deleted = await other.client.delete(f"/api/interview/{doomed}")
        assert deleted.status_code == 204, deleted.text
        assert "interview_calls_live 0.0" in (await owner.get("/metrics")).text
        await asyncio.sleep(0.5)  # the owner's lease is let go after the call's last save
        for reader in (owner, other.client):
            gone = await reader.get(f"/api/interview/{doomed}/status")
            assert gone.status_code == 404, gone.text
        # a call the owner still holds, then the owner dies without a word
        second = await _start(owner, "c2")
    assert owner_process.process is not None
    owner_process.process.kill()
    owner_process.process.wait(5)
    refused = await other.client.post(f"/api/interview/{second}/rtc/restart")
    assert refused.status_code == 503  # unreachable, then lost: retry, then a final state
    assert refused.json()["error"]["code"] in (
        "interview_owner_unreachable",
        "interview_owner_lost",
    )
    deadline = time.monotonic() + 10
    while (status := (await other.client.get(f"/api/interview/{second}/status")).json())[
        "status"
    ] != "failed":
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.2)
    assert status["end_reason"] == "owner_lost"


async def test_a_draining_process_takes_no_interview_and_keeps_its_calls(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    app: RunningApp = await start_app(make_settings())  # one process, no Redis: no peer
    assert app.services.interviews.owners is None  # nothing leased without a shared store
    live = await _start(app.client)
    assert (await app.client.get("/health/ready")).status_code == 200
    await app.services.interviews.drain()
    ready = await app.client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["interviews"]["status"] == "down"
    refused = await app.client.post("/api/interview/start", json={"user_id": "late"})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "draining"
    assert int(refused.headers["retry-after"]) > 0
    # the live call carries on, and once it ends the drain is over
    assert (await app.client.get(f"/api/interview/{live}/status")).json()["status"] == "created"
    assert not await app.services.interviews.drained(0.1)
    await app.client.post(f"/api/interview/{live}/end")
    assert await app.services.interviews.drained(5)


def test_a_forwarded_request_verifies_only_as_it_was_signed() -> None:
    forwarder = Forwarder(SECRET, "peer-1", timeout_s=1)
    sent = Incoming("POST", "/api/interview/x/end", {}, b'{"a":1}', "203.0.113.7")
    header = forwarder.header(sent)

    def arrived(**changes: Any) -> Incoming:
        fields = {
            "method": sent.method,
            "path": sent.path,
            "body": sent.body,
            "client": "10.0.0.2",  # the forwarding peer's address: not part of the proof
            "headers": {HEADER: header},
            **changes,
        }
        return Incoming(**fields)

    verified = forwarder.verify(arrived())
    assert verified is not None
    assert verified.instance == "peer-1"
    assert verified.client == "203.0.113.7"
    assert forwarder.verify(arrived(body=b'{"a":2}')) is None
    assert forwarder.verify(arrived(path="/api/interview/y/end")) is None
    assert forwarder.verify(arrived(method="GET")) is None
    assert (
        forwarder.verify(arrived(headers={HEADER: header.replace("203.0.113.7", "1.2.3.4")}))
        is None
    )
    assert forwarder.verify(arrived(headers={})) is None
    assert Forwarder("another-secret", "peer-2", timeout_s=1).verify(arrived()) is None
    stale = forwarder.header(sent, now=time.time() - 120)
    assert forwarder.verify(arrived(headers={HEADER: stale})) is None
