"""coturn and aiortc for real, inside a loopback-only namespace (see conftest.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aioice.stun
import aioice.turn
import pytest

from backend.app.settings import Settings
from interview_service.turn_credentials import turn_credentials
from tests.support.coturn import Coturn
from tests.support.rtc_client import RtcClient
from tests.support.uvicorn_process import ROOT


async def _allocate(coturn: Coturn, username: str, password: str) -> tuple[str, int]:
    transport, _ = await aioice.turn.create_turn_endpoint(
        asyncio.DatagramProtocol,
        server_addr=("127.0.0.1", coturn.port),
        username=username,
        password=password,
    )
    try:
        relayed: tuple[str, int] = transport.get_extra_info("sockname")
        return relayed
    finally:
        transport.close()


async def test_coturn_accepts_minted_credentials_and_refuses_bad_ones(coturn: Coturn) -> None:
    good = turn_credentials(coturn.secret, "cand-1", ttl_s=600, now=time.time())
    host, port = await _allocate(coturn, good.username, good.credential)
    assert host == "127.0.0.1"
    assert coturn.min_port <= port <= coturn.min_port + 19

    expired = turn_credentials(coturn.secret, "cand-1", ttl_s=-60, now=time.time())
    with pytest.raises(aioice.stun.TransactionFailed) as refused:
        await _allocate(coturn, expired.username, expired.credential)
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401

    forged = turn_credentials("not-the-secret", "cand-1", ttl_s=600, now=time.time())
    with pytest.raises(aioice.stun.TransactionFailed) as refused:
        await _allocate(coturn, forged.username, forged.credential)
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401


def _relay_only(coturn: Coturn) -> dict[str, Any]:
    """Settings of a service whose peer relays through this coturn only (as on ECS)."""
    return {
        "turn_server": coturn.server,
        "turn_secret": coturn.secret,
        "interview_relay_only": True,
        "interview_conversation": "greeter",
    }


async def _wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# Opus: the server sends its own packets, encoded ahead; a peer that offers only PCMU
# gets PCM frames that aiortc encodes
@pytest.mark.parametrize("only_codec", [None, "audio/PCMU"], ids=["opus", "pcmu-only"])
async def test_relay_only_call_carries_audio_both_ways(
    coturn: Coturn,
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    only_codec: str | None,
) -> None:
    app = await start_app(
        make_settings(
            **_relay_only(coturn),
            interview_heartbeat_s=0.5,
        )
    )
    http = app.client
    started = (
        await http.post(
            "/api/interview/start", json={"user_id": "cand-1", "role": "site reliability engineer"}
        )
    ).json()
    interview = started["session_id"]
    ice = (await http.get(f"/api/interview/{interview}/ice-servers")).json()["ice_servers"]
    client = RtcClient(ice, relay_only=True, speak_s=4.0, only_codec=only_codec)
    try:
        answer = await client.call(http, interview)
        audio = next(line for line in answer.splitlines() if line.startswith("m=audio"))
        codec = "opus/48000/2" if only_codec is None else "PCMU/8000"
        assert f"a=rtpmap:{audio.split()[3]} {codec}" in answer
        assert " typ relay " in answer
        assert " typ host " not in answer  # relay-only: the server offers nothing else
        await asyncio.wait_for(client.connected.wait(), 15)
        # the greeting is spoken (espeak-ng) and heard; the candidate's tone is received
        assert await _wait(lambda: client.loud_frames_heard >= 50, 15), client.loud_frames_heard
        assert client.misshapen_frames_heard == 0  # decoded as the codec it was sent in
        status: dict[str, Any] = {}

        async def server_heard_us() -> bool:
            nonlocal status
            status = (await http.get(f"/api/interview/{interview}/status")).json()
            return status["media"].get("voiced_frames_in", 0) >= 50

        deadline = time.monotonic() + 15
        while not await server_heard_us() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert status["status"] == "active", status
        assert status["connection_state"] == "connected"
        assert status["media"]["voiced_frames_in"] >= 50, status
        assert "state" in client.event_types()
        assert "heartbeat" in client.event_types()  # the data channel's keep-alive
        greeting = client.transcript("interviewer")[0]
        assert "site reliability engineer" in greeting["text"]

        ended = (await http.post(f"/api/interview/{interview}/end")).json()
        assert ended["status"] == "ended"
        assert await _wait(lambda: client.pc.connectionState in ("closed", "failed"), 40)
    finally:
        await client.close()
    results = (await http.get(f"/api/interview/{interview}/results")).json()
    assert results["transcript"][0]["role"] == "interviewer"
    # nothing of the call outlives it: no task of a call or a peer is left running
    leftovers = [
        task
        for task in asyncio.all_tasks()
        if task.get_coro().__qualname__.startswith(("Call.", "Peer.", "Greeter."))  # type: ignore[union-attr]
    ]
    assert leftovers == []
    assert results["metrics"]["frames_in"] > 0
    assert "interview_calls_live 0.0" in (await http.get("/metrics")).text


async def test_wrong_turn_secret_is_a_clear_502_not_a_dead_call(
    coturn: Coturn,
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
) -> None:
    app = await start_app(
        make_settings(
            turn_server=coturn.server,
            turn_secret="a-secret-coturn-does-not-know",
            interview_relay_only=True,
            interview_conversation="greeter",
        )
    )
    started = (await app.client.post("/api/interview/start", json={"user_id": "c"})).json()
    client = RtcClient()
    try:
        response = await app.client.post(
            f"/api/interview/{started['session_id']}/rtc/offer",
            json={"sdp": await client.offer(), "type": "offer"},
        )
    finally:
        await client.close()
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "turn_unusable"
    status = (await app.client.get(f"/api/interview/{started['session_id']}/status")).json()
    assert status["status"] == "created"  # the interview can still be retried


async def test_a_call_whose_media_stops_ends_itself(
    coturn: Coturn,
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
) -> None:
    app = await start_app(
        make_settings(
            **_relay_only(coturn),
            interview_idle_timeout_s=1.5,
        )
    )
    http = app.client
    started = (await http.post("/api/interview/start", json={"user_id": "c"})).json()
    interview = started["session_id"]
    client = RtcClient(started["ice_servers"], relay_only=True)
    try:
        await client.call(http, interview)
        await asyncio.wait_for(client.connected.wait(), 15)
        await client.vanish()  # the browser tab vanishes: no end, no goodbye, no media
        status = await _final_status(http, interview, within_s=15)
    finally:
        await client.close()
    assert status["status"] == "ended", status
    assert status["end_reason"] == "idle_timeout"
    assert "interview_calls_live 0.0" in (await http.get("/metrics")).text


async def test_a_candidate_who_hangs_up_ends_the_interview_at_once(
    coturn: Coturn,
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
) -> None:
    # the idle timeout is far away: only the closed connection can end the call in time
    app = await start_app(make_settings(**_relay_only(coturn), interview_idle_timeout_s=120))
    http = app.client
    started = (await http.post("/api/interview/start", json={"user_id": "c"})).json()
    interview = started["session_id"]
    client = RtcClient(started["ice_servers"], relay_only=True)
    try:
        await client.call(http, interview)
        await asyncio.wait_for(client.connected.wait(), 15)
    finally:
        await client.close()  # hangs up (the browser's pc.close(): DTLS close_notify)
    status = await _final_status(http, interview, within_s=10)
    assert status["status"] == "ended", status
    assert status["end_reason"] == "peer_closed"
    assert status["connection_state"] == "closed"
    assert "interview_calls_live 0.0" in (await http.get("/metrics")).text


async def _final_status(http: Any, interview: str, *, within_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = (await http.get(f"/api/interview/{interview}/status")).json()
        if status["status"] not in ("connecting", "active"):
            break
        await asyncio.sleep(0.2)
    return status


async def test_a_call_ends_at_its_maximum_duration(
    coturn: Coturn,
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
) -> None:
    app = await start_app(
        make_settings(
            **_relay_only(coturn),
        )
    )
    http = app.client
    started = (
        await http.post("/api/interview/start", json={"user_id": "c", "max_duration_s": 1.5})
    ).json()
    interview = started["session_id"]
    client = RtcClient(started["ice_servers"], relay_only=True, speak_s=20)
    try:
        await client.call(http, interview)
        await asyncio.wait_for(client.connected.wait(), 15)
        deadline = time.monotonic() + 15
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = (await http.get(f"/api/interview/{interview}/status")).json()
            if status["status"] not in ("connecting", "active"):
                break
            await asyncio.sleep(0.2)
    finally:
        await client.close()
    assert status["status"] == "ended", status
    assert status["end_reason"] == "max_duration"
    assert 1.5 <= status["duration_s"] < 10
    assert any(e.get("status") == "ended" for e in client.events if e.get("type") == "state")


async def test_the_shipped_coturn_config_loads_and_accepts_minted_credentials(
    tmp_path: Path,
) -> None:
    """docker/coturn/turnserver.conf as deployed, with only the test's ports and loopback."""
    config = ROOT / "docker" / "coturn" / "turnserver.conf"
    server = Coturn(tmp_path / "shipped", config=config)
    server.start()
    try:
        creds = turn_credentials(server.secret, "cand-1", ttl_s=600, now=time.time())
        host, _ = await _allocate(server, creds.username, creds.credential)
        assert host == "127.0.0.1"
    finally:
        server.stop()
    denied = [
        line.split("=", 1)[1]
        for line in config.read_text().splitlines()
        if line.startswith("denied-peer-ip=")
    ]
    for private in (
        "10.0.0.0-10.255.255.255",
        "172.16.0.0-172.31.255.255",
        "192.168.0.0-192.168.255.255",
    ):
        assert private in denied  # production never relays into private networks
