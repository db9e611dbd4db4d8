"""The local path end to end: a prompt becomes a playable MP4 with captions (CONTRACT §2.2).

No OpenAI, no Redis: the agents run inside the service (espeak-ng, Pillow, PyAV), and the
result is checked with ffprobe, a WebVTT reader and HTTP Range requests on /media.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from backend.pipeline.settings import PipelineSettings
from tests.pipeline.conftest import (
    AGENTS,
    create,
    events,
    ffprobe,
    parse_webvtt,
    statuses,
    wait_for,
)


@pytest.fixture
async def client(
    start_app: Callable[..., Any],
    make_settings: Callable[..., Settings],
    make_pipeline_settings: Callable[..., PipelineSettings],
) -> httpx.AsyncClient:
    running = await start_app(make_settings(), make_pipeline_settings())
    client: httpx.AsyncClient = running.client
    client.timeout = httpx.Timeout(30)
    return client


@pytest.mark.slow
async def test_a_prompt_becomes_a_narrated_mp4_with_captions(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    created = await create(
        client, prompt="A 20-second video about a cat", duration_s=20, scenes=3,
        resolution="640x360", style="ocean",
    )  # fmt: skip
    assert created["status"] == "queued"
    assert {a: created["agents"][a]["status"] for a in AGENTS} == dict.fromkeys(AGENTS, "queued")
    sid = created["session_id"]

    view = await wait_for(client, sid)
    assert view["status"] == "completed", view
    assert view["error"] is None
    assert view["created_at"].endswith("Z")
    assert view["updated_at"] >= view["created_at"]
    outputs = view["outputs"]
    assert set(outputs) >= {"video_url", "captions_url", "thumbnail_url", "duration_s"}

    history = await events(client, sid)
    for agent in AGENTS:
        assert statuses(history, agent) == ["queued", "running", "completed"], agent
        running = [e for e in history if e["agent"] == agent and e["status"] == "running"]
        assert all(e["message"] for e in running)
        assert any(e["progress"] and e["progress"] > 0 for e in running), agent
    writer = [e["message"] for e in history if e["agent"] == "script_writer"]
    assert any("local" in (m or "").lower() for m in writer), "the local writer says it is local"
    last = history[-1]
    assert (last["agent"], last["status"]) == ("pipeline", "completed")
    assert last["data"]["outputs"] == outputs
    assert view["last_seq"] == last["seq"]
    assert view["agents"]["pipeline"]["status"] == "completed"

    video = tmp_path / "video.mp4"
    video.write_bytes((await client.get(outputs["video_url"])).content)
    probe = ffprobe(video)
    v, a = probe.stream("video"), probe.stream("audio")
    assert (v["codec_name"], a["codec_name"]) == ("h264", "aac")
    assert (v["width"], v["height"]) == (640, 360)
    narrated = next(e for e in history if e["agent"] == "narrator" and e["status"] == "completed")
    total = narrated["data"]["total_s"]
    assert abs(probe.duration_s - total) <= 0.5, (probe.duration_s, total)
    assert abs(outputs["duration_s"] - total) <= 0.5
    data = video.read_bytes()
    assert data[4:8] == b"ftyp"
    assert data.find(b"moov") < data.find(b"mdat"), "+faststart puts the index first"

    captions = (await client.get(outputs["captions_url"])).text
    cues = parse_webvtt(captions)
    script = next(
        e for e in history if e["agent"] == "script_writer" and e["status"] == "completed"
    )
    narration = " ".join(s["narration"] for s in script["data"]["scenes"])
    assert " ".join(text for _, _, text in cues) == narration
    assert all(start < end for start, end, _ in cues)
    assert all(cues[i][1] <= cues[i + 1][0] + 1e-3 for i in range(len(cues) - 1))
    assert cues[-1][1] <= probe.duration_s + 0.05

    thumbnail = await client.get(outputs["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert thumbnail.content[:2] == b"\xff\xd8"


@pytest.mark.slow
async def test_media_answers_range_requests(client: httpx.AsyncClient) -> None:
    sid = (await create(client, duration_s=10, scenes=1, resolution="640x360"))["session_id"]
    view = await wait_for(client, sid)
    url = view["outputs"]["video_url"]
    assert url.startswith("/media/")
    whole = (await client.get(url)).content
    head = await client.get(url, headers={"Range": "bytes=0-99"})
    assert head.status_code == 206
    assert head.headers["content-range"] == f"bytes 0-99/{len(whole)}"
    assert head.content == whole[:100]
    middle = await client.get(url, headers={"Range": f"bytes={len(whole) // 2}-"})
    assert middle.status_code == 206
    assert middle.content == whole[len(whole) // 2 :]
    beyond = await client.get(url, headers={"Range": f"bytes={len(whole) + 10}-"})
    assert beyond.status_code == 416
    assert (await client.get(url.rsplit("/", 2)[0] + "/guess/video.mp4")).status_code == 404

    metrics = (await client.get("/metrics")).text
    assert 'pipeline_runs_total{status="completed"} 1.0' in metrics
    assert 'pipeline_step_duration_seconds_count{agent="editor",status="completed"} 1.0' in metrics
    assert "pipeline_runs_active 0.0" in metrics


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"duration_s": 5}, "duration_s"),
        ({"duration_s": 181}, "duration_s"),
        ({"duration_s": "30"}, "duration_s"),
        ({"scenes": 0}, "scenes"),
        ({"scenes": 13}, "scenes"),
        ({"resolution": "1000x1000"}, "resolution"),
        ({"resolution": "4096x2160"}, "resolution"),
        ({"resolution": "641x361"}, "resolution"),
        ({"resolution": "big"}, "resolution"),
        ({"style": "sparkly"}, "style"),
        ({"voice": "en us; rm -rf"}, "voice"),
        ({"prompt": ""}, "prompt"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_every_option_is_validated(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/sessions", json={"prompt": "a cat", **body})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["message"]


async def test_a_client_chosen_id_with_history_or_a_record_is_refused(
    client: httpx.AsyncClient,
) -> None:
    published = await client.post(
        "/api/sessions/run-42/events", json={"agent": "renderer", "status": "running"}
    )
    assert published.status_code == 202
    claimed = await client.post("/api/sessions", json={"prompt": "a cat", "session_id": "run-42"})
    assert claimed.status_code == 409
    assert claimed.json()["error"]["code"] == "session_exists"

    first = await client.post(
        "/api/sessions", json={"prompt": "a cat", "session_id": "mine-1", "duration_s": 10}
    )
    assert first.status_code == 201
    again = await client.post("/api/sessions", json={"prompt": "a dog", "session_id": "mine-1"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "session_exists"
