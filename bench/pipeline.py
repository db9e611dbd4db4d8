"""Video pipeline benchmark: how fast a local video renders, and what it costs the service.

1. embedded (no Redis): one 30 s, 5-scene local video rendered inside the service
   process (under uvicorn in this process's event loop), timed from POST to the final
   event, per step, with the ratio of video seconds to wall seconds; meanwhile a thread
   calls GET /health every 25 ms (REST p50/p99) and a task samples the event loop's lag
   every 10 ms (p50/p99/max): rendering runs in threads, so the loop must stay free.
2. workers (REDIS_URL): the service as a process plus 1, then 2 `pipeline-backend worker`
   processes (PIPELINE_CONCURRENCY=1 each); 4 videos posted at once; wall time and
   throughput, and the 2-worker/1-worker throughput ratio.

    uv run python -m bench.pipeline            # the full run (about 1-2 minutes)
    uv run python -m bench.pipeline --quick    # small videos, for the smoke test
    BENCH_REDIS_URL=redis://127.0.0.1:6379/0   # the Redis of phase 2 (default)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from backend.app.settings import load_settings
from backend.pipeline.settings import load_pipeline_settings
from tests.support.live_server import live_server
from tests.support.uvicorn_process import ServiceProcess
from tests.support.worker_process import WorkerProcess

AGENTS = ("script_writer", "narrator", "illustrator", "editor", "publisher")


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _wait(http: httpx.AsyncClient, sid: str, timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view: dict[str, Any] = (await http.get(f"/api/sessions/{sid}")).json()
        if view["status"] in ("completed", "failed", "cancelled"):
            return view
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{sid} did not finish")


async def _steps(http: httpx.AsyncClient, sid: str) -> dict[str, float]:
    events = (await http.get(f"/api/sessions/{sid}/events?limit=1000")).json()["events"]
    steps: dict[str, float] = {}
    for agent in AGENTS:
        mine = [e for e in events if e["agent"] == agent]
        start = next(_ts(e["ts"]) for e in mine if e["status"] == "running")
        end = next(_ts(e["ts"]) for e in mine if e["status"] == "completed")
        steps[agent] = round(end - start, 3)
    return steps


class RestProbe(threading.Thread):
    """GET /health every 25 ms from its own thread: latency as a client sees it."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self._url = f"{base_url}/health"
        self._stop_event = threading.Event()
        self.latencies_ms: list[float] = []

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop_event.is_set():
                began = time.perf_counter()
                client.get(self._url)
                self.latencies_ms.append((time.perf_counter() - began) * 1000)
                self._stop_event.wait(0.025)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


async def _sample_lag(lags_ms: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        expected = loop.time() + 0.010
        await asyncio.sleep(0.010)
        lags_ms.append(max(0.0, (loop.time() - expected) * 1000))


async def embedded(video: dict[str, Any], workdir: Path) -> dict[str, Any]:
    settings = load_settings(environment="test", log_level="WARNING", log_format="json")
    pipeline = load_pipeline_settings(
        media_dir=workdir / "media", pipeline_work_dir=workdir / "work"
    )
    async with (
        live_server(settings, pipeline) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=30) as http,
    ):
        probe = RestProbe(server.base_url)
        lags: list[float] = []
        stop = asyncio.Event()
        probe.start()
        async with asyncio.TaskGroup() as group:
            group.create_task(_sample_lag(lags, stop))
            began = time.perf_counter()
            created = await http.post("/api/sessions", json=video)
            sid = created.json()["session_id"]
            view = await _wait(http, sid)
            wall = time.perf_counter() - began
            stop.set()
        probe.stop()
        steps = await _steps(http, sid)
    video_s = view["outputs"]["duration_s"]
    return {
        "phase": "embedded",
        "status": view["status"],
        "video_s": video_s,
        "wall_s": round(wall, 3),
        "video_per_wall": round(video_s / wall, 2),
        "steps_s": steps,
        "rest_p50_ms": round(_pct(probe.latencies_ms, 0.5), 2),
        "rest_p99_ms": round(_pct(probe.latencies_ms, 0.99), 2),
        "rest_samples": len(probe.latencies_ms),
        "loop_lag_p50_ms": round(_pct(lags, 0.5), 2),
        "loop_lag_p99_ms": round(_pct(lags, 0.99), 2),
        "loop_lag_max_ms": round(max(lags), 2),
    }


async def with_workers(
    count: int, videos: int, video: dict[str, Any], workdir: Path, redis_url: str
) -> dict[str, Any]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    env = {
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "MEDIA_DIR": str(workdir / f"media-{count}"),
        "PIPELINE_WORK_DIR": str(workdir / f"work-{count}"),
        "PIPELINE_CONCURRENCY": "1",
        "PIPELINE_MAX_ACTIVE_PER_USER": str(videos),
    }
    service = ServiceProcess({**env, "LOG_LEVEL": "WARNING"})
    fleet = [WorkerProcess(workdir, env, name=f"w{count}-{n}") for n in range(count)]
    try:
        service.start()
        for worker in fleet:
            worker.start()
        async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as http:
            began = time.perf_counter()
            posted = await asyncio.gather(
                *(http.post("/api/sessions", json=video) for _ in range(videos))
            )
            sids = [response.json()["session_id"] for response in posted]
            views = await asyncio.gather(*(_wait(http, sid) for sid in sids))
            wall = time.perf_counter() - began
    finally:
        for worker in fleet:
            worker.stop()
        service.stop()
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
        client.close()
    video_s = sum(view["outputs"].get("duration_s", 0) for view in views)
    return {
        "phase": f"{count} worker{'s' if count > 1 else ''}",
        "videos": videos,
        "completed": sum(view["status"] == "completed" for view in views),
        "wall_s": round(wall, 3),
        "videos_per_min": round(videos / wall * 60, 2),
        "video_s_per_wall_s": round(video_s / wall, 2),
    }


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.quick:
        video = {"prompt": "A short video about bees", "duration_s": 10, "scenes": 2,
                 "resolution": "640x360"}  # fmt: skip
        videos = 2
    else:
        video = {"prompt": "A 30-second video about a cat", "duration_s": 30, "scenes": 5,
                 "resolution": "1280x720"}  # fmt: skip
        videos = 4
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        workdir = Path(tmp)
        rows = [await embedded(video, workdir)]
        rows.append(await with_workers(1, videos, video, workdir, redis_url))
        rows.append(await with_workers(2, videos, video, workdir, redis_url))
    return rows


def report(rows: list[dict[str, Any]]) -> None:
    first = rows[0]
    print(f"embedded: {first['video_s']:.1f} s video in {first['wall_s']:.2f} s wall "
          f"({first['video_per_wall']}x real time), status {first['status']}")  # fmt: skip
    print("  steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in first["steps_s"].items()))
    print(f"  REST GET /health while rendering: p50 {first['rest_p50_ms']} ms, "
          f"p99 {first['rest_p99_ms']} ms ({first['rest_samples']} requests)")  # fmt: skip
    print(f"  event-loop lag: p50 {first['loop_lag_p50_ms']} ms, p99 {first['loop_lag_p99_ms']} "
          f"ms, max {first['loop_lag_max_ms']} ms")  # fmt: skip
    for row in rows[1:]:
        print(f"{row['phase']}: {row['completed']}/{row['videos']} videos in "
              f"{row['wall_s']:.2f} s ({row['videos_per_min']} videos/min, "
              f"{row['video_s_per_wall_s']} video s per s)")  # fmt: skip
    ratio = rows[2]["videos_per_min"] / rows[1]["videos_per_min"]
    print(f"throughput 2 workers / 1 worker: {ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small videos (smoke test)")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    arguments = parser.parse_args()
    results = asyncio.run(main(arguments))
    report(results)
    if arguments.json:
        print(json.dumps(results))
