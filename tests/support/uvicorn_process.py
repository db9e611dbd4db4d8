"""The service as a real process: `python -m uvicorn backend.app.main:app` on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import httpx

from backend.app.ws_protocol import WS_PROTOCOL
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    def __init__(
        self,
        env: Mapping[str, str],
        *,
        grace_s: float = 5.0,
        extra_args: list[str] | None = None,
        cli: bool = False,
    ) -> None:
        self.port = free_port()
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "REDIS_"))}
        self.env = {
            **inherited,
            "ENVIRONMENT": "test",
            "LOG_FORMAT": "json",
            "SHUTDOWN_GRACE_S": str(grace_s),
            "INTERVIEW_WARM_MODELS": "false",  # most test processes never hold a call
            **env,
        }
        self.grace_s = grace_s
        self.extra_args = extra_args or []
        self.cli = cli  # `pipeline-backend serve` instead of bare uvicorn
        self.process: subprocess.Popen[str] | None = None
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"service-{self.port}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        if self.cli:
            return [
                sys.executable, "-m", "backend.app.cli", "serve",
                "--host", "127.0.0.1", "--port", str(self.port), *self.extra_args,
            ]  # fmt: skip
        return [
            sys.executable, "-m", "uvicorn", "backend.app.main:app",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--ws", WS_PROTOCOL, "--ws-max-size", "65536",
            "--timeout-graceful-shutdown", str(int(self.grace_s)),
            *self.extra_args,
        ]  # fmt: skip

    def _spawn(self, log: IO[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self._command(), cwd=ROOT, env=self.env, stdout=log,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def start(self, timeout_s: float = 30.0) -> None:
        mode = "a" if self.process is not None else "w"  # a revived process adds to its log
        with self.log_path.open(mode) as log:
            self.process = self._spawn(log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited early:\n{self.logs()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.process.kill()  # never leave a half-started service behind
        self.process.wait()
        raise RuntimeError(f"service did not become healthy:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def terminate(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float) -> int:
        """The exit code; fails with the process's last log lines when it does not exit."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)  # its threads' and tasks' stacks
            time.sleep(1.0)
            tail = "\n".join(self.logs().splitlines()[-80:])
            raise AssertionError(
                f"still running after {timeout_s} s; its log ends:\n{tail}"
            ) from None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=self.grace_s + 10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
