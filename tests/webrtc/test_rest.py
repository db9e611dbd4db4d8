"""The interview REST surface (CONTRACT §3) through a running app, with real aiortc offers.

Runs in the loopback-only namespace like every WebRTC check; media across the relay is
in test_relay.py. Here: signaling, the state machine, ownership, limits and bad input.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aiortc import RTCSessionDescription

from backend.app.settings import Settings
from backend.core.auth import Role, mint_token
from backend.core.clock import to_seconds
from tests.conftest import JWT_SECRET
from tests.support.coturn import Coturn
from tests.support.rtc_client import RtcClient

TURN = {"turn_server": "127.0.0.1:3478", "turn_secret": "a-turn-secret"}


async def _start(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/interview/start", json={"user_id": "cand-1", **body})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _wait_for_status(
    client: httpx.AsyncClient, interview_id: str, wanted: str, timeout_s: float = 10.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        body: dict[str, Any] = (await client.get(f"/api/interview/{interview_id}/status")).json()
        if body["status"] == wanted or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.1)


async def test_start_returns_the_session_and_ice_servers(client: httpx.AsyncClient) -> None:
    started = await _start(client, role="backend engineer", questions=["Why Python?"])
    assert started["status"] == "created"
    assert started["expires_at"].endswith("Z")
    assert to_seconds(started["expires_at"]) > time.time()
    assert started["ice_servers"] == [{"urls": ["stun:stun.l.google.com:19302"]}]
    status = (await client.get(f"/api/interview/{started['session_id']}/status")).json()
    assert status["status"] == "created"
    assert status["current_question"] is None
    assert status["connection_state"] == "new"


async def test_ice_servers_with_turn_come_in_contract_order(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    app = await start_app(make_settings(**TURN, turn_tls=True))
    started = await _start(app.client, max_duration_s=600)
    body = (await app.client.get(f"/api/interview/{started['session_id']}/ice-servers")).json()
    stun, turn = body["ice_servers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    assert turn["urls"] == [
        "turn:127.0.0.1:3478?transport=udp",
        "turn:127.0.0.1:3478?transport=tcp",
        "turns:127.0.0.1:5349?transport=tcp",
        "turns:127.0.0.1:443?transport=tcp",
    ]
    expiry, user = turn["username"].split(":")
    assert user == "cand-1"
    # valid for the whole interview (connect window + 600 s) plus a margin, at least TURN_TTL_S
    assert body["ttl_s"] >= 3600
    assert int(expiry) >= to_seconds(started["expires_at"]) + 600


async def test_an_offer_gets_an_answer_with_opus_first_and_candidates(
    coturn: Coturn,
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
) -> None:
    app = await start_app(make_settings(turn_server=coturn.server, turn_secret=coturn.secret))
    client = app.client
    started = await _start(client)
    peer = RtcClient()
    try:
        answer = await peer.call(client, started["session_id"])
    finally:
        await peer.close()
    audio_line = next(line for line in answer.splitlines() if line.startswith("m=audio"))
    first_payload = audio_line.split()[3]
    assert f"a=rtpmap:{first_payload} opus/48000/2" in answer
    assert " typ relay " in answer  # the namespace has only lo: the relay is the way in
    assert "m=application" in answer  # the events data channel
    status = (await client.get(f"/api/interview/{started['session_id']}/status")).json()
    assert status["status"] in ("connecting", "active")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"sdp": "not sdp at all", "type": "offer"}, 400, "invalid_sdp"),
        ({"sdp": "v=0\r\nthis is not a session\r\n", "type": "offer"}, 400, "invalid_sdp"),
        ({"sdp": "v=0\r\n" + "a=x\r\n" * 20_000, "type": "offer"}, 413, "sdp_too_large"),
        ({"sdp": "v=0\r\n", "type": "answer"}, 400, "invalid_sdp_type"),
        ({"type": "offer"}, 422, "validation_error"),
    ],
    ids=["garbage", "broken", "oversized", "wrong-type", "no-sdp"],
)
async def test_bad_offers_get_4xx_and_the_interview_survives(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, code: str
) -> None:
    started = await _start(client)
    interview = started["session_id"]
    response = await client.post(f"/api/interview/{interview}/rtc/offer", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    status_after = (await client.get(f"/api/interview/{interview}/status")).json()
    assert status_after["status"] == "created"  # a refused offer changes nothing
    # still usable: a good offer afterwards is answered
    peer = RtcClient()
    try:
        await peer.call(client, interview)
    finally:
        await peer.close()


async def test_a_huge_body_is_refused_by_its_length(client: httpx.AsyncClient) -> None:
    started = await _start(client)
    response = await client.post(
        f"/api/interview/{started['session_id']}/rtc/offer",
        content=b"{" + b" " * 400_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


async def test_candidates_before_the_offer_and_the_end_marker_are_accepted(
    client: httpx.AsyncClient,
) -> None:
    started = await _start(client)
    url = f"/api/interview/{started['session_id']}/rtc/ice-candidate"
    candidate = {
        "candidate": "candidate:1 1 udp 2122260223 192.0.2.10 54400 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
    assert (await client.post(url, json=candidate)).status_code == 204
    assert (await client.post(url, json=[candidate, candidate])).status_code == 204
    assert (await client.post(url, json={"candidate": "", "sdpMid": "0"})).status_code == 204
    assert (await client.post(url, json={"candidate": None})).status_code == 204
    peer = RtcClient()
    try:
        await peer.call(client, started["session_id"])  # buffered candidates applied, no error
    finally:
        await peer.close()
    assert (await client.post(url, json=candidate)).status_code == 204  # after the offer too


@pytest.mark.parametrize(
    "body",
    [
        {"candidate": "candidate:garbage", "sdpMid": "0"},
        {"candidate": "candidate:1 1 udp 1 192.0.2.1 5 typ host"},  # neither mid nor index
        {"candidate": 42, "sdpMid": "0"},
    ],
    ids=["unparseable", "no-mid", "not-a-string"],
)
async def test_malformed_candidates_get_4xx(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    started = await _start(client)
    url = f"/api/interview/{started['session_id']}/rtc/ice-candidate"
    response = await client.post(url, json=body)
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"] in ("invalid_candidate", "validation_error")


async def test_unknown_interviews_are_404(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "status"),
        ("GET", "ice-servers"),
        ("GET", "results"),
        ("POST", "end"),
    ]:
        response = await client.request(method, f"/api/interview/nope/{path}")
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "interview_not_found"
    response = await client.post(
        "/api/interview/nope/rtc/offer", json={"sdp": "v=0\r\n", "type": "offer"}
    )
    assert response.status_code == 404


async def test_end_releases_the_call_and_later_signaling_is_refused(
    client: httpx.AsyncClient,
) -> None:
    started = await _start(client)
    interview = started["session_id"]
    peer = RtcClient()
    try:
        await peer.call(client, interview)
        ended = (await client.post(f"/api/interview/{interview}/end")).json()
    finally:
        await peer.close()
    assert ended["status"] == "ended"
    assert ended["end_reason"] == "ended_by_client"
    health = await client.get("/metrics")
    assert "interview_calls_live 0.0" in health.text
    again = await client.post(
        f"/api/interview/{interview}/rtc/offer", json={"sdp": "v=0\r\n", "type": "offer"}
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "interview_ended"
    candidate = await client.post(
        f"/api/interview/{interview}/rtc/ice-candidate", json={"candidate": None}
    )
    assert candidate.status_code == 409
    # ending twice answers the same final status
    assert (await client.post(f"/api/interview/{interview}/end")).json()["status"] == "ended"


async def test_rtc_answer_without_a_server_offer_is_409(client: httpx.AsyncClient) -> None:
    started = await _start(client)
    response = await client.post(
        f"/api/interview/{started['session_id']}/rtc/answer",
        json={"sdp": "v=0\r\n", "type": "answer"},
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_pending_offer"


async def test_server_offer_for_ice_restart_takes_the_browsers_answer(
    client: httpx.AsyncClient,
) -> None:
    started = await _start(client)
    interview = started["session_id"]
    restart = await client.post(f"/api/interview/{interview}/rtc/restart")
    assert restart.status_code == 200
    offer = restart.json()
    assert offer["type"] == "offer"
    assert "m=audio" in offer["sdp"]
    browser = RtcClient()
    try:
        await browser.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await browser.pc.setLocalDescription(await browser.pc.createAnswer())
        response = await client.post(
            f"/api/interview/{interview}/rtc/answer",
            json={"sdp": browser.pc.localDescription.sdp, "type": "answer"},
        )
    finally:
        await browser.close()
    assert response.status_code == 204, response.text


async def test_an_interview_nobody_joins_expires_and_is_freed(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    app = await start_app(make_settings(interview_connect_timeout_s=0.5))
    started = await _start(app.client)
    status = await _wait_for_status(app.client, started["session_id"], "expired")
    assert status["status"] == "expired"
    assert status["end_reason"] == "connect_timeout"
    assert "interview_calls_live 0.0" in (await app.client.get("/metrics")).text


async def test_concurrency_limit_answers_503_with_retry_after(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    app = await start_app(make_settings(interview_max_concurrent=2))
    first = await _start(app.client)
    await _start(app.client)
    refused = await app.client.post("/api/interview/start", json={"user_id": "c3"})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "interview_capacity"
    assert int(refused.headers["retry-after"]) > 0
    await app.client.post(f"/api/interview/{first['session_id']}/end")
    assert (
        await app.client.post("/api/interview/start", json={"user_id": "c3"})
    ).status_code == 201


async def test_transcript_lines_merge_in_time_order_into_results(
    client: httpx.AsyncClient,
) -> None:
    started = await _start(client)
    interview = started["session_id"]
    url = f"/api/interview/{interview}/transcript"
    assert (
        await client.post(url, json={"role": "candidate", "text": "second", "ts": 20})
    ).status_code == 201
    assert (
        await client.post(url, json={"role": "interviewer", "text": "first", "ts": 10})
    ).status_code == 201
    bad = await client.post(url, json={"role": "narrator", "text": "x"})
    assert bad.status_code == 422
    results = (await client.get(f"/api/interview/{interview}/results")).json()
    assert [line["text"] for line in results["transcript"]] == ["first", "second"]
    assert results["scores"] is None  # nothing invented before an interviewer has run
    assert results["status"] == "created"


async def test_a_user_sees_only_their_own_interviews(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    app = await start_app(make_settings(auth_jwt_secret=JWT_SECRET))

    def as_(sub: str, role: Role = Role.USER) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(JWT_SECRET, sub, role)}"}

    assert (await app.client.post("/api/interview/start", json={"user_id": "x"})).status_code == 401
    started = await app.client.post(
        "/api/interview/start", json={"user_id": "alice"}, headers=as_("alice")
    )
    interview = started.json()["session_id"]
    for path in ("status", "ice-servers", "results"):
        mine = await app.client.get(f"/api/interview/{interview}/{path}", headers=as_("alice"))
        assert mine.status_code == 200
        theirs = await app.client.get(f"/api/interview/{interview}/{path}", headers=as_("bob"))
        assert theirs.status_code == 403
        assert theirs.json()["error"]["code"] == "not_your_interview"
    ended = await app.client.post(f"/api/interview/{interview}/end", headers=as_("bob"))
    assert ended.status_code == 403
    service = await app.client.get(
        f"/api/interview/{interview}/status", headers=as_("ops", Role.SERVICE)
    )
    assert service.status_code == 200
