"""The apikey CLI against two real service processes sharing the real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import JWT_SECRET
from tests.support.uvicorn_process import ROOT, ServiceProcess


def _cli(redis_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "AUTH_"))}
    env |= {"REDIS_URL": redis_url, "REDIS_PREFIX": prefix, "ENVIRONMENT": "test"}
    return subprocess.run(
        [sys.executable, "-m", "backend.app.cli", "apikey", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def fleet(redis_url: str, redis_prefix: str) -> Iterator[list[ServiceProcess]]:
    env = {"REDIS_URL": redis_url, "REDIS_PREFIX": redis_prefix, "AUTH_JWT_SECRET": JWT_SECRET}
    processes = [ServiceProcess(env), ServiceProcess(env)]
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in processes:
            process.stop()


def _status(process: ServiceProcess, key: str) -> int:
    response = httpx.get(f"{process.base_url}/api/me", headers={"X-API-Key": key}, timeout=5)
    return response.status_code


@pytest.mark.slow
def test_create_list_revoke_across_two_processes(
    fleet: list[ServiceProcess], redis_url: str, redis_prefix: str
) -> None:
    created = _cli(redis_url, redis_prefix, "create", "--name", "renderer", "--role", "agent")
    assert created.returncode == 0, created.stderr
    fields = dict(line.split(":", 1) for line in created.stdout.splitlines())
    key, key_id = fields["key"].strip(), fields["id"].strip()
    assert "shown only now" in created.stderr

    assert [_status(p, key) for p in fleet] == [200, 200]
    publish = httpx.post(
        f"{fleet[1].base_url}/api/sessions/run-7/events",
        json={"agent": "renderer", "status": "running"},
        headers={"Authorization": f"ApiKey {key}"},
        timeout=5,
    )
    assert publish.status_code == 202

    listed = _cli(redis_url, redis_prefix, "list", "--json")
    (row,) = json.loads(listed.stdout)
    assert (row["id"], row["name"], row["role"]) == (key_id, "renderer", "agent")
    assert row["last_used_at"].endswith("Z")
    assert row["revoked_at"] is None
    assert key not in listed.stdout

    revoked = _cli(redis_url, redis_prefix, "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    started = time.monotonic()
    while any(_status(p, key) != 401 for p in fleet):
        assert time.monotonic() - started < 5.0, "a process still accepts the revoked key"
        time.sleep(0.1)
    assert _cli(redis_url, redis_prefix, "revoke", "nope").returncode == 1
    for process in fleet:
        assert key not in process.logs()


def test_the_cli_refuses_without_redis(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    result = subprocess.run(
        [sys.executable, "-m", "backend.app.cli", "apikey", "list"],
        cwd=ROOT,
        env={**env, "ENVIRONMENT": "test"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "REDIS_URL" in result.stderr
