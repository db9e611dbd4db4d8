"""X-Forwarded-For/Proto are honoured only from TRUSTED_PROXIES (the real CLI and uvicorn).

Behind API Gateway's REST proxy or an ALB, the peer address is the proxy's; the client's
own address and scheme arrive in X-Forwarded-*. Anyone else could forge those headers,
so uvicorn trusts them only from the configured proxies, and the request log shows
whichever address it believed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


class CliService:
    """`pipeline-backend serve` as systemd runs it, on a free loopback port."""

    def __init__(self, tmp_path: Path, trusted: str) -> None:
        self.port = free_port()
        self.log_path = tmp_path / f"serve-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "REDIS_"))}
        env |= {"ENVIRONMENT": "test", "LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}
        env |= {"TRUSTED_PROXIES": trusted, "SHUTDOWN_GRACE_S": "5"}
        command = [sys.executable, "-m", "backend.app.cli", "serve"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                command,
                cwd=tmp_path,
                env=env | {"PYTHONPATH": str(ROOT)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=0.5).is_success:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"service never became healthy:\n{self.log_path.read_text()}")

    def request_log(self, path: str) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("event") == "request" and record.get("path") == path:
                lines.append(record)
        return lines

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[CliService] = []

    def start(trusted: str) -> CliService:
        service = CliService(tmp_path, trusted)
        started.append(service)
        service.wait_healthy()
        return service

    yield start
    for service in started:
        service.stop()


def _get(service: CliService, path: str, headers: dict[str, str]) -> None:
    response = httpx.get(f"http://127.0.0.1:{service.port}{path}", headers=headers, timeout=5)
    assert response.status_code == 200


@pytest.mark.slow
def test_a_trusted_proxys_forwarded_headers_are_honoured(serve: Any) -> None:
    service = serve("127.0.0.1")
    _get(service, "/api/health", FORWARDED)
    (line,) = service.request_log("/api/health")
    assert (line["client"], line["scheme"]) == ("203.0.113.7", "https")


@pytest.mark.slow
def test_an_untrusted_peers_forwarded_headers_are_ignored(serve: Any) -> None:
    service = serve("10.0.0.5")  # the ALB's address; this test's loopback is not it
    _get(service, "/api/health", FORWARDED)
    (line,) = service.request_log("/api/health")
    assert (line["client"], line["scheme"]) == ("127.0.0.1", "http")


@pytest.mark.slow
def test_a_chain_of_trusted_proxies_yields_the_first_untrusted_address(serve: Any) -> None:
    # client -> API Gateway (10.0.0.5, trusted) -> this loopback peer (trusted)
    service = serve("127.0.0.1,10.0.0.0/8")
    chain = {"X-Forwarded-For": "198.51.100.9, 10.0.0.5", "X-Forwarded-Proto": "https"}
    _get(service, "/api/health", chain)
    (line,) = service.request_log("/api/health")
    assert line["client"] == "198.51.100.9"
