"""The HTML report in headless Chromium: it renders, shows the scores with their quotes,
and a transcript line carrying markup is shown as text, never run.

The app runs under a real uvicorn; the candidate's hostile lines arrive through the API
(``POST …/transcript``), and the scores are written into the record as the evaluation
writes them after a call (scoring itself is tested against the fake OpenAI server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from tests.support.chromium import Chromium
from tests.support.live_server import live_server

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
QUOTE = "I built Kubernetes operators for video rendering"
SCORES = [
    {"criterion": "depth", "score": 4, "max": 5, "evidence": [QUOTE]},
    {"criterion": "communication", "score": 3, "max": 5, "evidence": ["step by step & clearly"]},
]


@pytest.mark.slow
async def test_the_report_renders_in_chromium_and_runs_no_transcript_markup(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    async with live_server(make_settings()) as server, httpx.AsyncClient() as http:
        base = f"{server.base_url}/api/interview"
        started = (
            await http.post(f"{base}/start", json={"user_id": "cand", "role": "engineer"})
        ).json()
        interview = started["session_id"]
        for role, text, ts in [
            ("interviewer", "Tell me about your work.", 1_800_000_000.0),
            ("candidate", f"{QUOTE}, step by step & clearly.", 1_800_000_004.0),
            ("candidate", HOSTILE, 1_800_000_065.0),
        ]:
            response = await http.post(
                f"{base}/{interview}/transcript", json={"role": role, "text": text, "ts": ts}
            )
            assert response.status_code == 201
        await http.post(f"{base}/{interview}/end")
        records = server.services.interviews.records
        record = await records.load(interview)
        record.summary, record.scores, record.evaluation = "Builds <operators>.", SCORES, "ready"
        record.transcript[0].interrupted = True
        await records.save(record)

        browser = Chromium(tmp_path / "chromium", fake_audio=tmp_path / "unused.wav")
        try:
            await browser.open(f"{base}/{interview}/report")
            for _ in range(200):  # until the page has loaded (bounded: 10 s)
                if await browser.evaluate("!!document.getElementById('metrics')"):
                    break
                await asyncio.sleep(0.05)
            page: dict[str, Any] = await browser.evaluate(
                """({
                  title: document.title,
                  summary: document.getElementById('summary').innerText,
                  scores: [...document.querySelectorAll('#scores .score')].map(s => ({
                    head: s.querySelector('h3').innerText,
                    quotes: [...s.querySelectorAll('blockquote')].map(q => q.innerText),
                  })),
                  lines: [...document.querySelectorAll('#transcript .line')].map(l => ({
                    text: l.querySelector('.text').innerText,
                    at: l.querySelector('.at').innerText,
                    interrupted: l.classList.contains('interrupted'),
                    marker: getComputedStyle(l.querySelector('.text'), '::after').content,
                  })),
                  scripts: document.scripts.length,
                  images: document.images.length,
                  pwned: window.pwned === undefined ? null : window.pwned,
                  metrics: document.getElementById('metrics').innerText,
                })"""
            )
        finally:
            await browser.close()

    assert page["title"] == "Interview report: engineer"
    assert page["summary"] == "Builds <operators>."
    assert [s["head"].split("\n") for s in page["scores"]] == [
        ["depth", "4 / 5"],
        ["communication", "3 / 5"],
    ]
    assert page["scores"][0]["quotes"] == [QUOTE]
    assert page["scores"][1]["quotes"] == ["step by step & clearly"]
    # the hostile line is there, as text: no script element, no image, nothing ran
    assert page["lines"][2]["text"] == HOSTILE
    assert page["scripts"] == 0
    assert page["images"] == 0
    assert page["pwned"] is None
    assert [line["at"] for line in page["lines"]] == ["0:00", "0:04", "1:05"]
    assert page["lines"][0]["interrupted"]
    assert "interrupted" in page["lines"][0]["marker"]
    assert not page["lines"][1]["interrupted"]
    assert "How it ended" in page["metrics"]
