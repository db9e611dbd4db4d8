"""Helpers for the pipeline's tests: an app with the pipeline on, waiting for a run."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

AGENTS = ("script_writer", "narrator", "illustrator", "editor", "publisher")
TERMINAL = {"completed", "failed", "cancelled"}


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("prompt", "A 30-second video about a cat")
    response = await client.post("/api/sessions", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def wait_for(
    client: httpx.AsyncClient,
    session_id: str,
    done: Callable[[dict[str, Any]], bool] = lambda view: view["status"] in TERMINAL,
    timeout_s: float = 90.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        view: dict[str, Any] = (await client.get(f"/api/sessions/{session_id}")).json()
        if done(view):
            return view
        assert time.monotonic() < deadline, f"session never got there: {view}"
        await asyncio.sleep(0.1)


async def events(client: httpx.AsyncClient, session_id: str) -> list[dict[str, Any]]:
    page = (await client.get(f"/api/sessions/{session_id}/events?limit=1000")).json()
    found: list[dict[str, Any]] = page["events"]
    return found


def statuses(history: list[dict[str, Any]], agent: str) -> list[str]:
    """The agent's statuses in order, runs of ``running`` folded into one."""
    seen: list[str] = []
    for event in history:
        if event["agent"] == agent and (not seen or seen[-1] != event["status"]):
            seen.append(event["status"])
    return seen


@dataclass
class Probe:
    streams: list[dict[str, Any]]
    duration_s: float

    def stream(self, kind: str) -> dict[str, Any]:
        return next(s for s in self.streams if s["codec_type"] == kind)


def ffprobe(path: Path) -> Probe:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    data = json.loads(result.stdout)
    return Probe(data["streams"], float(data["format"]["duration"]))


_TIMING = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)")


def parse_webvtt(text: str) -> list[tuple[float, float, str]]:
    """A strict-enough WebVTT reader: the header, then cues of timing + text lines."""
    assert text.startswith("WEBVTT"), "not WebVTT: the header is missing"
    cues = []
    for block in text.strip().split("\n\n")[1:]:
        lines = block.strip().splitlines()
        timing = next(i for i, line in enumerate(lines) if "-->" in line)
        match = _TIMING.fullmatch(lines[timing].strip())
        assert match, f"bad cue timing: {lines[timing]!r}"
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups())
        start = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000
        end = h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        cues.append((start, end, " ".join(lines[timing + 1 :])))
    return cues
