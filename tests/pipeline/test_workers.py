"""Two `pipeline-backend worker` processes on the real Redis: scaling and surviving a kill.

Each test has its own key prefix (so its own job stream, leases and records). A short
idle timeout lets a dead worker's job come back within seconds.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from backend.pipeline.settings import PipelineSettings
from tests.pipeline.conftest import AGENTS, create, events, ffprobe, wait_for
from tests.support.worker_process import WorkerProcess

IDLE_S, LEASE_S = 3, 1.5
ESPEAK = shutil.which("espeak-ng") or "espeak-ng"


@pytest.fixture
def worker_env(redis_url: str, redis_prefix: str, tmp_path: Path) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": redis_prefix,
        "MEDIA_DIR": str(tmp_path / "media"),
        "PIPELINE_WORK_DIR": str(tmp_path / "work"),
        "PIPELINE_JOB_IDLE_TIMEOUT_S": str(IDLE_S),
        "PIPELINE_LEASE_TTL_S": str(LEASE_S),
        "PIPELINE_CONCURRENCY": "1",
    }


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., list[WorkerProcess]]]:
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], count: int = 2) -> list[WorkerProcess]:
        for index in range(count):
            worker = WorkerProcess(tmp_path, env, name=f"worker-{index}")
            started.append(worker)
            worker.start()
        return started

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
async def client(
    start_app: Callable[..., Any],
    make_settings: Callable[..., Settings],
    make_pipeline_settings: Callable[..., PipelineSettings],
    redis_url: str,
    redis_prefix: str,
) -> httpx.AsyncClient:
    running = await start_app(
        make_settings(redis_url=redis_url, redis_prefix=redis_prefix),
        make_pipeline_settings(pipeline_job_idle_timeout_s=IDLE_S, pipeline_lease_ttl_s=LEASE_S),
    )
    client: httpx.AsyncClient = running.client
    client.timeout = httpx.Timeout(30)
    return client


def render_children() -> dict[int, int]:
    """pid → parent pid of every live render child process on the machine."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if b"backend.pipeline.render_process" in cmdline and state != "Z":
            found[int(proc.name)] = int(parent)
    return found


def completions(history: list[dict[str, Any]], agent: str) -> int:
    return sum(1 for e in history if e["agent"] == agent and e["status"] == "completed")


def runners(history: list[dict[str, Any]]) -> list[str]:
    return [
        e["data"]["worker"]
        for e in history
        if e["agent"] == "pipeline" and e["status"] == "running"
    ]


@pytest.mark.slow
@pytest.mark.redis
async def test_a_worker_killed_mid_run_is_replaced_without_repeating_steps(
    client: httpx.AsyncClient,
    workers: Callable[..., list[WorkerProcess]],
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    fleet = workers(worker_env)
    created = await create(client, duration_s=40, scenes=3, resolution="1280x720")
    sid = created["session_id"]
    assert created["status"] == "queued"
    await wait_for(client, sid, lambda v: v["agents"].get("editor", {}).get("status") == "running")
    holder_id = runners(await events(client, sid))[0]
    holder = next(w for w in fleet if w.worker_id == holder_id)
    holder.kill()
    survivors = {w.process.pid for w in fleet if w is not holder and w.process}
    for _ in range(30):  # the orphaned renderer notices within a fraction of a second
        if set(render_children().values()) <= survivors:
            break
        await asyncio.sleep(0.1)
    assert set(render_children().values()) <= survivors, "the killed worker's renderer exits"

    view = await wait_for(client, sid, timeout_s=120)
    assert view["status"] == "completed", view
    history = await events(client, sid)
    assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
    taken_over = runners(history)
    assert len(taken_over) == 2
    assert taken_over[1] != holder_id
    resumed = [e for e in history if e["agent"] == "pipeline" and e["status"] == "running"][1]
    assert "resuming at editor" in resumed["message"]
    for agent in AGENTS:
        assert completions(history, agent) == 1, agent
    assert completions(history, "pipeline") == 1
    videos = list((tmp_path / "media").rglob("*.mp4"))
    assert len(videos) == 1, "published once"
    probe = ffprobe(videos[0])
    assert abs(probe.duration_s - view["outputs"]["duration_s"]) <= 0.5


@pytest.mark.slow
@pytest.mark.redis
async def test_a_long_step_on_a_live_worker_is_not_run_twice(
    client: httpx.AsyncClient,
    workers: Callable[..., list[WorkerProcess]],
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    slow = tmp_path / "slow-espeak"
    slow.write_text(f'#!/bin/sh\nsleep {IDLE_S * 2}\nexec {ESPEAK} "$@"\n')
    slow.chmod(0o755)
    fleet = workers({**worker_env, "PIPELINE_ESPEAK_BINARY": str(slow)})
    sid = (await create(client, duration_s=10, scenes=1, resolution="640x360"))["session_id"]
    view = await wait_for(client, sid, timeout_s=90)
    assert view["status"] == "completed", view
    history = await events(client, sid)
    assert len(runners(history)) == 1, "one worker ran it from start to end"
    for agent in (*AGENTS, "pipeline"):
        assert completions(history, agent) == 1, agent
    left = [r for w in fleet for r in w.records("pipeline_job_left_pending")]
    assert left, "the redelivered job found the live lease and stayed away"


@pytest.mark.slow
@pytest.mark.redis
async def test_cancel_reaches_the_worker_running_the_session(
    client: httpx.AsyncClient,
    workers: Callable[..., list[WorkerProcess]],
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    hang = tmp_path / "hang-espeak"
    hang.write_text("#!/bin/sh\nexec sleep 60\n")
    hang.chmod(0o755)
    workers({**worker_env, "PIPELINE_ESPEAK_BINARY": str(hang)}, count=1)
    sid = (await create(client, duration_s=10, scenes=1))["session_id"]
    await wait_for(
        client, sid, lambda v: v["agents"].get("narrator", {}).get("status") == "running"
    )
    view = (await client.post(f"/api/sessions/{sid}/cancel")).json()
    assert view["status"] == "cancelled"
    assert view["agents"]["narrator"]["status"] == "cancelled"
    history = await events(client, sid)
    assert sum(1 for e in history if e["agent"] == "pipeline" and e["status"] == "cancelled") == 1
    assert not (tmp_path / "work" / sid / "narrator.partial").exists()


@pytest.mark.slow
@pytest.mark.redis
async def test_a_stopping_worker_hands_its_run_to_another(
    client: httpx.AsyncClient,
    workers: Callable[..., list[WorkerProcess]],
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    slow = tmp_path / "slow-espeak"
    slow.write_text(f'#!/bin/sh\nsleep 2\nexec {ESPEAK} "$@"\n')
    slow.chmod(0o755)
    fleet = workers({**worker_env, "PIPELINE_ESPEAK_BINARY": str(slow)})
    sid = (await create(client, duration_s=10, scenes=2, resolution="640x360"))["session_id"]
    await wait_for(
        client, sid, lambda v: v["agents"].get("narrator", {}).get("status") == "running"
    )
    holder_id = runners(await events(client, sid))[0]
    holder = next(w for w in fleet if w.worker_id == holder_id)
    assert holder.stop() == 0, holder.logs()[-2000:]
    assert holder.records("pipeline_job_handed_off")

    view = await wait_for(client, sid, timeout_s=60)
    assert view["status"] == "completed", view
    history = await events(client, sid)
    assert runners(history)[1] != holder_id
    for agent in (*AGENTS, "pipeline"):
        assert completions(history, agent) == 1, agent


def test_a_worker_without_redis_refuses_to_start(tmp_path: Path) -> None:
    worker = WorkerProcess(tmp_path, {})
    worker.env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "backend.app.cli", "worker"],
        cwd=tmp_path, env=worker.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "REDIS_URL" in result.stderr
