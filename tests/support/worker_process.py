"""``pipeline-backend worker`` as a real process, logging JSON to a file the test reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(self, workdir: Path, env: Mapping[str, str], name: str = "worker") -> None:
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "REDIS_"))}
        self.env = base | {
            "ENVIRONMENT": "test",
            "LOG_FORMAT": "json",
            "PYTHONPATH": str(ROOT),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        command = [sys.executable, "-m", "backend.app.cli", "worker"]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while not self.records("pipeline_worker_started"):
            assert self.process.poll() is None, f"worker exited:\n{self.logs()}"
            assert time.monotonic() < deadline, f"worker never started:\n{self.logs()}"
            time.sleep(0.1)

    @property
    def worker_id(self) -> str:
        return str(self.records("pipeline_worker_started")[0]["worker"])

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

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
