"""The demo page in headless Chromium, end to end, inside the loopback-only namespace."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from tests.support.chromium import Chromium
from tests.support.coturn import Coturn
from tests.support.live_server import live_server


@pytest.fixture
def candidate_voice(tmp_path: Path) -> Path:
    """The fake microphone: a spoken answer, synthesised offline."""
    wav = tmp_path / "answer.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(wav), "I have five years of experience with Python services."],
        check=True,
        timeout=30,
    )
    return wav


async def _poll(browser: Chromium, condition: str, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        state = await browser.evaluate("JSON.stringify(window.interviewDemo)")
        demo = None if state is None else json.loads(state)
        if demo is not None and eval(condition, {}, {"demo": demo}):  # noqa: S307 - test-local
            return demo
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}: {demo}\n{browser.log_tail()}")
        await asyncio.sleep(0.25)


@pytest.mark.parametrize("browser_relay", [False, True], ids=["browser-all", "browser-relay"])
async def test_demo_page_talks_to_the_server_through_coturn(
    coturn: Coturn,
    make_settings: Callable[..., Settings],
    candidate_voice: Path,
    tmp_path: Path,
    browser_relay: bool,
) -> None:
    settings = make_settings(
        turn_server=coturn.server,
        turn_secret=coturn.secret,
        interview_relay_only=True,
        # the fake microphone loops its file without pause: the interviewer would hear an
        # endless barge-in; the voice loop has its own test (test_voice.py)
        interview_conversation="greeter",
    )
    async with live_server(settings) as server:
        browser = Chromium(tmp_path / "chromium", fake_audio=candidate_voice)
        relay = "1" if browser_relay else "0"
        try:
            await browser.open(
                f"{server.base_url}/demo/interview?autostart=1&user_id=chromium&relay={relay}"
                "&role=data%20engineer"
            )
            demo = await _poll(browser, "demo['state'] == 'active' or demo['errors']", timeout_s=30)
            assert not demo["errors"], demo["errors"]
            # the server's greeting arrives as sound (not silence) and as an event
            demo = await _poll(
                browser, "demo['audioEnergy'] > 0.01 and demo['audioPackets'] > 50", timeout_s=20
            )
            assert demo["candidatesSent"] > 0  # trickled, not bundled in the offer
            if browser_relay:
                assert set(demo["localCandidateTypes"]) == {"relay"}
            texts = [e["item"]["text"] for e in demo["events"] if e.get("type") == "transcript"]
            assert any("data engineer" in text for text in texts), demo["events"]

            interview = demo["sessionId"]
            async with httpx.AsyncClient(base_url=server.base_url) as http:
                deadline = time.monotonic() + 15
                while True:
                    status = (await http.get(f"/api/interview/{interview}/status")).json()
                    if status["media"].get("voiced_frames_in", 0) >= 50:
                        break
                    assert time.monotonic() < deadline, status  # the browser's speech arrives
                    await asyncio.sleep(0.25)
                await browser.evaluate("document.getElementById('end').click()")
                demo = await _poll(browser, "demo['results'] is not None", timeout_s=15)
                assert demo["final"]["status"] == "ended"
                assert demo["final"]["end_reason"] == "ended_by_client"
                assert demo["results"]["transcript"][0]["role"] == "interviewer"
                final = (await http.get(f"/api/interview/{interview}/status")).json()
                assert final["status"] == "ended"
                # a final status means the call's resources are already released
                assert "interview_calls_live 0.0" in (await http.get("/metrics")).text
        finally:
            await browser.close()
