"""The service as systemd runs it: ``python -m backend.app.cli serve`` on a free port.

Goes through the real CLI (settings from the environment, uvicorn's proxy-header
options from ``TRUSTED_PROXIES``), logging JSON to a file the test can read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


class CliService:
    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / f"serve-{self.port}.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "REDIS_"))}
        self.env = base | {
            "ENVIRONMENT": "test",
            "LOG_FORMAT": "json",
            "SHUTDOWN_GRACE_S": "5",
            "PYTHONPATH": str(ROOT),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        command = [sys.executable, "-m", "backend.app.cli", "serve"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("w") as log:  # cwd: no stray .env from the checkout
            self.process = subprocess.Popen(
                command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"service exited:\n{self.logs()}"
            try:
                if httpx.get(f"{self.base_url}/health", timeout=0.5).is_success:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"service never became healthy:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def records(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.logs().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("event") == event:
                found.append(record)
        return found

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
