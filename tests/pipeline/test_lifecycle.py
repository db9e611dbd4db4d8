"""A run's lifecycle under faults: cancel, retry, transient and permanent errors, limits.

The narrator's espeak-ng is wrapped by small scripts the tests control (a flag file that
makes it hang, a counter that makes it die by a signal), so each fault is real and lands
exactly where the test wants it.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from backend.pipeline.settings import PipelineSettings
from tests.pipeline.conftest import AGENTS, create, events, statuses, wait_for

ESPEAK = shutil.which("espeak-ng") or "espeak-ng"


def wrapper(path: Path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def app_with(
    start_app: Callable[..., Any],
    make_settings: Callable[..., Settings],
    make_pipeline_settings: Callable[..., PipelineSettings],
) -> Callable[..., Any]:
    async def start(**pipeline: Any) -> httpx.AsyncClient:
        running = await start_app(make_settings(), make_pipeline_settings(**pipeline))
        client: httpx.AsyncClient = running.client
        client.timeout = httpx.Timeout(30)
        return client

    return start


async def running_agent(client: httpx.AsyncClient, sid: str, agent: str) -> dict[str, Any]:
    return await wait_for(
        client, sid, lambda v: v["agents"].get(agent, {}).get("status") == "running"
    )


@pytest.mark.slow
async def test_cancel_stops_a_hung_step_and_retry_resumes_without_recomputing(
    app_with: Callable[..., Any], tmp_path: Path
) -> None:
    hang = tmp_path / "hang"
    hang.touch()
    binary = wrapper(
        tmp_path / "espeak",
        f'[ -e {hang} ] && exec sleep 60\nexec {ESPEAK} "$@"',
    )
    client = await app_with(pipeline_espeak_binary=binary)
    sid = (await create(client, duration_s=10, scenes=2, resolution="640x360"))["session_id"]
    await running_agent(client, sid, "narrator")

    began = time.monotonic()
    cancelled = await client.post(f"/api/sessions/{sid}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert time.monotonic() - began < 5
    view = cancelled.json()
    assert view["status"] == "cancelled"
    agents = {a: view["agents"][a]["status"] for a in (*AGENTS, "pipeline")}
    assert agents == {
        "script_writer": "completed",
        **dict.fromkeys(("narrator", "illustrator", "editor", "publisher"), "cancelled"),
        "pipeline": "cancelled",
    }
    assert not (tmp_path / "work" / sid / "narrator.partial").exists()
    assert (await client.get(f"/api/sessions/{sid}")).json()["status"] == "cancelled"
    again = await client.post(f"/api/sessions/{sid}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "session_finished"

    hang.unlink()
    before = len(await events(client, sid))
    retried = await client.post(f"/api/sessions/{sid}/retry")
    assert retried.status_code == 202, retried.text
    assert retried.json()["status"] == "queued"
    view = await wait_for(client, sid)
    assert view["status"] == "completed", view
    rerun = (await events(client, sid))[before:]
    assert not [e for e in rerun if e["agent"] == "script_writer"], "its output was stored"
    for agent in ("narrator", "illustrator", "editor", "publisher"):
        assert statuses(rerun, agent) == ["queued", "running", "completed"], agent
    assert (rerun[-1]["agent"], rerun[-1]["status"]) == ("pipeline", "completed")
    assert (await client.post(f"/api/sessions/{sid}/retry")).status_code == 409
    assert (await client.post(f"/api/sessions/{sid}/cancel")).status_code == 409


@pytest.mark.slow
async def test_cancel_stops_the_encoder_within_5_s_and_removes_its_partial_files(
    app_with: Callable[..., Any], tmp_path: Path
) -> None:
    client = await app_with(pipeline_x264_preset="slow")
    sid = (await create(client, duration_s=120, scenes=2, resolution="1920x1080"))["session_id"]
    await running_agent(client, sid, "editor")
    partial = tmp_path / "work" / sid / "editor.partial"
    assert partial.exists()

    began = time.monotonic()
    view = (await client.post(f"/api/sessions/{sid}/cancel")).json()
    assert time.monotonic() - began < 5
    assert view["status"] == "cancelled"
    assert view["agents"]["editor"]["status"] == "cancelled"
    assert view["agents"]["illustrator"]["status"] == "completed"
    assert not partial.exists()
    assert not list((tmp_path / "media").rglob("*.mp4"))


@pytest.mark.slow
async def test_transient_errors_are_retried_with_backoff(
    app_with: Callable[..., Any], tmp_path: Path
) -> None:
    counter = tmp_path / "count"
    counter.write_text("0")
    binary = wrapper(
        tmp_path / "espeak",
        f"n=$(cat {counter}); echo $((n + 1)) > {counter}\n"
        f'[ "$n" -lt 2 ] && kill -9 $$\nexec {ESPEAK} "$@"',
    )
    client = await app_with(pipeline_espeak_binary=binary, pipeline_step_attempts=3)
    sid = (await create(client, duration_s=10, scenes=1, resolution="640x360"))["session_id"]
    view = await wait_for(client, sid)
    assert view["status"] == "completed", view
    narrator = [e for e in await events(client, sid) if e["agent"] == "narrator"]
    retries = [e for e in narrator if "Retrying" in (e["message"] or "")]
    assert len(retries) == 2
    assert "killed" in retries[0]["message"]


@pytest.mark.slow
async def test_a_permanent_error_fails_the_session_with_a_readable_error(
    app_with: Callable[..., Any], tmp_path: Path
) -> None:
    client = await app_with(pipeline_espeak_binary=str(tmp_path / "no-such-espeak"))
    sid = (await create(client, duration_s=10, scenes=1))["session_id"]
    view = await wait_for(client, sid)
    assert view["status"] == "failed"
    assert view["error"].startswith("narrator failed: ")
    assert "not installed" in view["error"]
    assert view["agents"]["narrator"]["status"] == "failed"
    for agent in ("illustrator", "editor", "publisher"):
        assert view["agents"][agent]["status"] == "cancelled"
    last = (await events(client, sid))[-1]
    assert (last["agent"], last["status"]) == ("pipeline", "failed")
    assert last["data"]["error"] == view["error"]
    narrator = [e for e in await events(client, sid) if e["agent"] == "narrator"]
    assert not [e for e in narrator if "Retrying" in (e["message"] or "")], "not retried"


@pytest.mark.slow
async def test_a_user_has_a_limited_number_of_videos_in_progress(
    app_with: Callable[..., Any], tmp_path: Path
) -> None:
    binary = wrapper(tmp_path / "espeak", "exec sleep 60")
    client = await app_with(pipeline_espeak_binary=binary, pipeline_max_active_per_user=2)
    first = (await create(client, duration_s=10, scenes=1))["session_id"]
    await create(client, duration_s=10, scenes=1)
    refused = await client.post("/api/sessions", json={"prompt": "one more", "duration_s": 10})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_active_sessions"
    assert int(refused.headers["retry-after"]) > 0
    assert (await client.post(f"/api/sessions/{first}/cancel")).status_code == 200
    await create(client, duration_s=10, scenes=1)


@pytest.mark.slow
@pytest.mark.redis
async def test_the_limit_holds_for_requests_at_the_same_instant_on_two_processes(
    start_app: Callable[..., Any],
    make_settings: Callable[..., Settings],
    make_pipeline_settings: Callable[..., PipelineSettings],
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    settings = make_settings(redis_url=redis_url, redis_prefix=redis_prefix)
    pipeline = make_pipeline_settings(pipeline_max_active_per_user=2)
    one, two = [(await start_app(settings, pipeline)).client for _ in range(2)]
    answers = await asyncio.gather(
        *(
            client.post("/api/sessions", json={"prompt": "a cat", "duration_s": 10})
            for client in (one, two, one, two, one, two)
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 201, 429, 429, 429, 429]
