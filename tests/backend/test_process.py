"""The service as systemd and ECS run it: a real uvicorn process, its logs and its signals."""

from __future__ import annotations

import json
import signal
import time

import httpx
import pytest

from tests.support.uvicorn_process import ServiceProcess

pytestmark = pytest.mark.slow


def test_logs_are_json_lines_with_the_request_id_and_uvicorn_goes_through_them() -> None:
    service = ServiceProcess({"LOG_FORMAT": "json"})
    service.start()
    try:
        response = httpx.get(f"{service.base_url}/api/me", headers={"X-Request-ID": "trace-42"})
        assert response.headers["x-request-id"] == "trace-42"
        httpx.get(f"{service.base_url}/api/missing")
    finally:
        service.stop()
    records = [json.loads(line) for line in service.logs().splitlines() if line.startswith("{")]
    requests = [r for r in records if r.get("event") == "request"]
    traced = next(r for r in requests if r.get("request_id") == "trace-42")
    assert {"method": "GET", "path": "/api/me", "status": 200}.items() <= traced.items()
    assert traced["duration_ms"] >= 0
    assert any(r["path"] == "/api/missing" and r["status"] == 404 for r in requests)
    # uvicorn's own lifecycle lines are rendered by the same JSON pipeline.
    assert any(
        r.get("logger", "").startswith("uvicorn") and "Application startup complete" in r["event"]
        for r in records
    )


def test_sigterm_exits_0_within_the_grace_period() -> None:
    service = ServiceProcess({}, grace_s=3, cli=True)
    service.start()
    started = time.monotonic()
    service.terminate()
    assert service.wait(timeout_s=10) == 0
    assert time.monotonic() - started < 3 + 2
    assert "services_closing" in service.logs()


def test_bare_uvicorn_stops_on_sigterm_as_systemd_expects() -> None:
    """uvicorn re-raises SIGTERM after its graceful shutdown; systemd counts that as clean."""
    service = ServiceProcess({}, grace_s=3)
    service.start()
    service.terminate()
    assert service.wait(timeout_s=10) in (0, -15)
    assert "services_closing" in service.logs()


def test_sigusr1_writes_the_threads_and_the_pending_tasks_to_the_log() -> None:
    """What an operator runs on a process that will not stop: ``kill -USR1 <pid>``."""
    service = ServiceProcess({"LOG_FORMAT": "json"})
    service.start()
    try:
        assert service.process is not None
        service.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while '"tasks_dump"' not in service.logs():
            assert time.monotonic() < deadline, service.logs()[-3000:]
            time.sleep(0.1)
        # still serving: the dump changed nothing
        assert httpx.get(f"{service.base_url}/health").status_code == 200
    finally:
        service.stop()
    logs = service.logs()
    assert "Current thread" in logs  # faulthandler: every thread's stack, main one marked
    dump = next(json.loads(line) for line in logs.splitlines() if '"tasks_dump"' in line)
    assert dump["count"] == len(dump["tasks"]) > 0
    # uvicorn's main task is among them, followed down its awaits to its main loop's sleep
    serving = next(t for t in dump["tasks"] if t["coro"] == "Server.serve")
    assert any(line.endswith(" main_loop") for line in serving["at"]), serving
