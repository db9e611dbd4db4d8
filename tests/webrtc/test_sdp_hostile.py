"""Malformed SDP through the REST API, with real aiortc offers: 400 invalid_sdp, never 500.

Each mutation starts from a real offer (or, for rtc/answer, a real answer to the
server's offer); aiortc raises AttributeError, AssertionError and its own errors on
some of them, which used to reach the client as 500s.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable

import httpx
import pytest
from aiortc import RTCSessionDescription

from tests.support.rtc_client import RtcClient


def _drop(pattern: str) -> Callable[[str], str]:
    return lambda sdp: "".join(
        line for line in sdp.splitlines(keepends=True) if not re.match(pattern, line)
    )


def _no_application(sdp: str) -> str:
    head, _, _ = sdp.partition("m=application")
    return head


def _many_payload_types(sdp: str) -> str:
    types = " ".join(str(96 + n % 32) for n in range(200))
    return re.sub(r"^m=audio (\d+) (\S+) .*$", rf"m=audio \1 \2 {types}", sdp, flags=re.M)


MUTATIONS: dict[str, Callable[[str], str]] = {
    "no-setup": _drop(r"a=setup:"),
    "no-application": _no_application,
    "no-rtpmap": _drop(r"a=rtpmap:"),
    "video-not-audio": lambda sdp: sdp.replace("m=audio", "m=video"),
    "garbage-candidate": lambda sdp: sdp.replace(
        "a=end-of-candidates", "a=candidate:garbage here\r\na=end-of-candidates", 1
    ),
    "200-payload-types": _many_payload_types,
    "no-fingerprint": _drop(r"a=fingerprint:"),
    "no-ice-ufrag": _drop(r"a=ice-(ufrag|pwd):"),
    "bad-setup": lambda sdp: re.sub(r"a=setup:\w+", "a=setup:sideways", sdp),
    "bad-port": lambda sdp: sdp.replace("m=audio 9 ", "m=audio 99999999999 "),
    "bad-mid-group": lambda sdp: sdp.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 7 8"),
}


async def _offer_sdp() -> str:
    peer = RtcClient()
    try:
        return await peer.offer()
    finally:
        await peer.close()


async def _start(client: httpx.AsyncClient) -> str:
    response = await client.post("/api/interview/start", json={"user_id": "cand-1"})
    assert response.status_code == 201, response.text
    return str(response.json()["session_id"])


@pytest.mark.parametrize("name", sorted(MUTATIONS))
async def test_a_malformed_offer_is_400_and_the_interview_survives(
    client: httpx.AsyncClient, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    interview = await _start(client)
    bad = MUTATIONS[name](await _offer_sdp())
    response = await client.post(
        f"/api/interview/{interview}/rtc/offer", json={"sdp": bad, "type": "offer"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("invalid_sdp", "no_audio")
    assert "NoneType" not in response.text
    peer = RtcClient()  # still usable: a good offer afterwards is answered
    try:
        await peer.call(client, interview)
    finally:
        await peer.close()
    gc.collect()  # a dropped task with an exception reports it when collected
    assert "exception was never retrieved" not in caplog.text


@pytest.mark.parametrize("name", ["no-setup", "no-fingerprint", "no-rtpmap", "bad-setup"])
async def test_a_malformed_answer_is_400(client: httpx.AsyncClient, name: str) -> None:
    interview = await _start(client)
    offer = await client.post(f"/api/interview/{interview}/rtc/restart")
    assert offer.status_code == 200, offer.text
    peer = RtcClient()
    try:
        await peer.pc.setRemoteDescription(RTCSessionDescription(offer.json()["sdp"], "offer"))
        await peer.pc.setLocalDescription(await peer.pc.createAnswer())
        answer = MUTATIONS[name](peer.pc.localDescription.sdp)
    finally:
        await peer.close()
    response = await client.post(
        f"/api/interview/{interview}/rtc/answer", json={"sdp": answer, "type": "answer"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_sdp"
