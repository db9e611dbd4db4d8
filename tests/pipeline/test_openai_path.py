"""The OpenAI path with the real SDK against the local OpenAI-compatible test server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from backend.pipeline.settings import PipelineSettings
from tests.pipeline.conftest import AGENTS, create, events, ffprobe, wait_for
from tests.support.fake_openai import Behaviour, FakeOpenAI, fake_openai


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with fake_openai() as server:
        yield server


@pytest.fixture
async def client(
    fake: FakeOpenAI,
    start_app: Callable[..., Any],
    make_settings: Callable[..., Settings],
    make_pipeline_settings: Callable[..., PipelineSettings],
) -> httpx.AsyncClient:
    pipeline = make_pipeline_settings(openai_api_key="sk-test", openai_base_url=fake.base_url)
    running = await start_app(make_settings(), pipeline)
    client: httpx.AsyncClient = running.client
    client.timeout = httpx.Timeout(30)
    return client


@pytest.mark.slow
async def test_the_openai_path_makes_a_video_from_a_schema_checked_script(
    client: httpx.AsyncClient, fake: FakeOpenAI, tmp_path: Path
) -> None:
    sid = (await create(client, duration_s=15, scenes=3, resolution="854x480", voice="nova"))[
        "session_id"
    ]
    view = await wait_for(client, sid)
    assert view["status"] == "completed", view

    chat = fake.seen("chat")[0]
    schema = chat["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert schema["schema"]["properties"]["scenes"]["minItems"] == 3
    assert [b["voice"] for b in fake.seen("speech")] == ["nova"] * 3
    assert len(fake.seen("images")) == 3
    history = await events(client, sid)
    script = next(
        e for e in history if e["agent"] == "script_writer" and e["status"] == "completed"
    )
    assert script["data"]["source"] == "openai"
    assert [s["title"] for s in script["data"]["scenes"]] == ["Part 1", "Part 2", "Part 3"]
    messages = " ".join(e["message"] or "" for e in history)
    assert "OpenAI" in messages
    for local_only in ("no AI model", "template", "espeak", "local slide"):
        assert local_only not in messages

    video = tmp_path / "video.mp4"
    video.write_bytes((await client.get(view["outputs"]["video_url"])).content)
    probe = ffprobe(video)
    assert (probe.stream("video")["width"], probe.stream("video")["height"]) == (854, 480)
    narrated = next(e for e in history if e["agent"] == "narrator" and e["status"] == "completed")
    assert abs(probe.duration_s - narrated["data"]["total_s"]) <= 0.5


@pytest.mark.slow
async def test_busy_providers_are_retried_and_refusals_fail_readably(
    client: httpx.AsyncClient, fake: FakeOpenAI
) -> None:
    fake.speech = Behaviour(fail=503, fail_times=2)
    fake.images = Behaviour(fail=429, fail_times=1)
    sid = (await create(client, duration_s=10, scenes=1, resolution="640x360"))["session_id"]
    view = await wait_for(client, sid)
    assert view["status"] == "completed", view
    retried = [e for e in await events(client, sid) if "Retrying" in (e["message"] or "")]
    assert sorted({e["agent"] for e in retried}) == ["illustrator", "narrator"]

    fake.chat = Behaviour(fail=401)
    sid = (await create(client, duration_s=10, scenes=1))["session_id"]
    view = await wait_for(client, sid)
    assert view["status"] == "failed"
    assert (
        view["error"]
        == "script_writer failed: OpenAI refused the request to the script model (401)"
    )
    assert "sk-test" not in str(view)
    assert {view["agents"][a]["status"] for a in AGENTS[1:]} == {"cancelled"}


@pytest.mark.slow
async def test_a_script_that_breaks_the_schema_is_not_used(
    client: httpx.AsyncClient, fake: FakeOpenAI
) -> None:
    fake.structured = '{"title": "x", "scenes": [{"title": "only one"}]}'
    sid = (await create(client, duration_s=10, scenes=2))["session_id"]
    view = await wait_for(client, sid)
    assert view["status"] == "failed"
    assert "did not validate" in view["error"]
    assert len(fake.seen("chat")) == 3, "retried up to PIPELINE_STEP_ATTEMPTS"
    assert not fake.seen("speech")
