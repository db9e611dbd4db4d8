"""An SDP and ICE-candidate mutator for the interview's signaling endpoints.

Starts from a real aiortc offer and a real candidate, mutates them line by line and
character by character (hypothesis generates the cases, the async test sends them),
and posts them to rtc/offer, rtc/answer and rtc/ice-candidate. Every answer must be a
2xx or a 4xx in the envelope, never a 5xx; afterwards the service is healthy, a good
offer is still answered, and no task died unseen ("Task exception was never retrieved").
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from backend.app.settings import Settings
from tests.support.rtc_client import RtcClient

EXAMPLES = 300
ALPHABET = st.sampled_from(list(" :/=-.0123456789abcxyzAZ\t\x00\x0b\u2028é\r\n"))
PREFIXES = [
    "a=candidate:", "a=fmtp:", "a=rtpmap:", "m=audio ", "m=application ", "a=setup:",
    "a=ssrc:", "a=group:BUNDLE ", "c=IN IP4 ", "a=mid:", "a=extmap:", "a=rtcp:",
    "a=fingerprint:sha-256 ", "a=ice-ufrag:", "a=sctp-port:", "a=max-message-size:",
]  # fmt: skip
CANDIDATE = "candidate:1 1 udp 2122260223 127.0.0.1 54400 typ host generation 0"


@st.composite
def mutated_sdp(draw: st.DrawFn, sdp: str) -> str:
    lines = sdp.split("\r\n")
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        match draw(st.sampled_from(["drop", "dup", "swap", "edit", "insert", "cut", "numbers"])):
            case "drop":
                del lines[i]
            case "dup":
                lines.insert(i, lines[i])
            case "swap":
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            case "edit":
                at = draw(st.integers(0, len(lines[i])))
                lines[i] = lines[i][:at] + draw(st.text(ALPHABET, max_size=6)) + lines[i][at:]
            case "insert":
                text = draw(st.text(ALPHABET, max_size=30) | st.integers().map(str))
                lines.insert(i, draw(st.sampled_from(PREFIXES)) + text)
            case "cut":
                lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
            case "numbers":
                big = draw(st.sampled_from(["0", "-1", "65536", "99999999999", str(2**64), "1e9"]))
                lines[i] = "".join(big if c.isdigit() else c for c in lines[i])
        if not lines:
            lines = ["v=0"]
    return "\r\n".join(lines)


@st.composite
def mutated_candidate(draw: st.DrawFn) -> dict[str, Any]:
    text = draw(mutated_sdp(CANDIDATE).map(lambda s: s.replace("\r\n", " ")))
    body: dict[str, Any] = {"candidate": draw(st.sampled_from([text, text, "", None, 7]))}
    mid: Any = draw(st.sampled_from(["0", "1", "9", "", None, 0, "x" * 200]))
    index: Any = draw(st.sampled_from([0, 1, 7, None, -1, 2**40, "0", True]))
    if mid is not None:
        body["sdpMid"] = mid
    if index is not None:
        body["sdpMLineIndex"] = index
    return body


def generate(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """Hypothesis generates; the async test sends (hypothesis cannot await)."""
    cases: list[Any] = []

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(case: Any) -> None:
        cases.append(case)

    collect()
    return cases


def check(response: httpx.Response, what: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text, what)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"], what
        assert error["message"], what


async def _start(client: httpx.AsyncClient) -> str:
    response = await client.post("/api/interview/start", json={"user_id": "fuzz"})
    assert response.status_code == 201, response.text
    return str(response.json()["session_id"])


async def _still_answers(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).status_code == 200
    interview = await _start(client)
    peer = RtcClient()
    try:
        answer = await peer.call(client, interview)
    finally:
        await peer.close()
    assert "m=audio" in answer


@pytest.fixture
async def client(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> httpx.AsyncClient:
    app = await start_app(make_settings(interview_max_concurrent=500))
    return app.client  # type: ignore[no-any-return]


async def test_mutated_offers_get_2xx_or_4xx(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    peer = RtcClient()
    try:
        offer = await peer.offer()
    finally:
        await peer.close()
    interview = await _start(client)
    for sdp in generate(mutated_sdp(offer), EXAMPLES):
        response = await client.post(
            f"/api/interview/{interview}/rtc/offer", json={"sdp": sdp, "type": "offer"}
        )
        check(response, sdp)
    await _still_answers(client)
    gc.collect()
    assert "exception was never retrieved" not in caplog.text
    assert "unhandled_exception" not in caplog.text


async def test_mutated_answers_get_2xx_or_4xx(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    interview = await _start(client)
    restart = await client.post(f"/api/interview/{interview}/rtc/restart")
    assert restart.status_code == 200, restart.text
    peer = RtcClient()
    try:
        from aiortc import RTCSessionDescription

        await peer.pc.setRemoteDescription(RTCSessionDescription(restart.json()["sdp"], "offer"))
        await peer.pc.setLocalDescription(await peer.pc.createAnswer())
        answer = str(peer.pc.localDescription.sdp)
    finally:
        await peer.close()
    for sdp in generate(mutated_sdp(answer), EXAMPLES // 2):
        response = await client.post(
            f"/api/interview/{interview}/rtc/answer", json={"sdp": sdp, "type": "answer"}
        )
        check(response, sdp)
        if response.status_code == 204:  # accepted: ask for a fresh server offer
            again = await client.post(f"/api/interview/{interview}/rtc/restart")
            check(again, "restart")
    await _still_answers(client)
    gc.collect()
    assert "exception was never retrieved" not in caplog.text
    assert "unhandled_exception" not in caplog.text


async def test_mutated_candidates_get_2xx_or_4xx(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    cases = generate(mutated_candidate(), EXAMPLES)
    before = await _start(client)  # candidates buffered before any offer
    after = await _start(client)  # candidates applied to a live peer connection
    peer = RtcClient()
    try:
        await peer.call(client, after)
        for n, body in enumerate(cases):
            for interview in (before, after):
                url = f"/api/interview/{interview}/rtc/ice-candidate"
                payload = [body, body] if n % 5 == 0 else body
                check(await client.post(url, json=payload), body)
        second = RtcClient()  # the buffered ones are applied to this offer, or dropped
        try:
            await second.call(client, before)
        finally:
            await second.close()
    finally:
        await peer.close()
    await _still_answers(client)
    gc.collect()
    assert "exception was never retrieved" not in caplog.text
    assert "unhandled_exception" not in caplog.text
