"""/demo/pipeline in headless Chromium: a prompt, live agents, a dropped socket, the video."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from backend.pipeline.settings import PipelineSettings
from tests.support.chromium import Chromium
from tests.support.live_server import live_server

ESPEAK = shutil.which("espeak-ng") or "espeak-ng"


async def _poll(browser: Chromium, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        state = await browser.evaluate("JSON.stringify(window.pipelineDemo)")
        demo = None if state is None else json.loads(state)
        if demo is not None and condition(demo):
            return demo
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never got there: {demo}\n{browser.log_tail()}")
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_the_page_shows_agents_live_resumes_and_plays_the_video(
    make_settings: Callable[..., Settings],
    make_pipeline_settings: Callable[..., PipelineSettings],
    tmp_path: Path,
) -> None:
    slow = tmp_path / "slow-espeak"
    slow.write_text(f'#!/bin/sh\nsleep 1\nexec {ESPEAK} "$@"\n')
    slow.chmod(0o755)
    silence = tmp_path / "mic.wav"
    subprocess.run([ESPEAK, "-w", str(silence), "quiet"], check=True, timeout=30)
    pipeline = make_pipeline_settings(pipeline_espeak_binary=str(slow))
    async with live_server(make_settings(), pipeline) as server:
        async with httpx.AsyncClient() as http:
            page = await http.get(f"{server.base_url}/demo/pipeline")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        browser = Chromium(tmp_path / "chromium", fake_audio=silence)
        try:
            await browser.open(f"{server.base_url}/demo/pipeline")
            await _poll(browser, lambda demo: demo["status"] == "idle")
            await browser.evaluate(
                """(() => {
                  document.getElementById('prompt').value = 'A short video about bees';
                  document.getElementById('duration').value = '10';
                  document.getElementById('scenes').value = '3';
                  document.getElementById('resolution').value = '640x360';
                  document.getElementById('generate').click();
                })()"""
            )
            await _poll(
                browser,
                lambda demo: demo["agents"].get("narrator", {}).get("status") == "running",
            )
            await browser.evaluate("window.pipelineDemo.dropSocket()")
            demo = await _poll(
                browser,
                lambda demo: (
                    demo["status"] == "completed"
                    and demo["video"]["cues"] > 0
                    and (
                        demo["video"]["duration"] is not None or demo["video"]["error"] is not None
                    )
                ),
            )
            assert demo["reconnects"] >= 1
            assert demo["snapshots"] >= 2
            seqs = demo["seqs"]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "no gap, no repeat"
            assert demo["last_seq"] == seqs[-1]
            assert {demo["agents"][a]["status"] for a in demo["agents"]} == {"completed"}
            assert demo["video"]["error"] is None, "Chromium could not play the MP4"
            assert abs(demo["video"]["duration"] - demo["outputs"]["duration_s"]) <= 0.5
            link = await browser.evaluate("document.getElementById('captions').href")
            async with httpx.AsyncClient() as http:
                captions = await http.get(link)
            assert captions.text.startswith("WEBVTT")
        finally:
            await browser.close()
