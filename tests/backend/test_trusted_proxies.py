"""X-Forwarded-For/Proto are honoured only from TRUSTED_PROXIES (the real CLI and uvicorn).

Behind API Gateway's REST proxy or an ALB, the peer address is the proxy's; the client's
own address and scheme arrive in X-Forwarded-*. Anyone else could forge those headers,
so uvicorn trusts them only from the configured proxies, and the request log shows
whichever address it believed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli_service import CliService

FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[CliService] = []

    def start(trusted: str) -> CliService:
        service = CliService(tmp_path, {"LOG_LEVEL": "DEBUG", "TRUSTED_PROXIES": trusted})
        started.append(service)
        service.start()
        return service

    yield start
    for service in started:
        service.stop()


def _get(service: CliService, path: str, headers: dict[str, str]) -> None:
    response = httpx.get(f"{service.base_url}{path}", headers=headers, timeout=5)
    assert response.status_code == 200


def _request_log(service: CliService, path: str) -> list[dict[str, Any]]:
    # The request line is written once the response has gone out, so the client can get
    # its answer a moment before the line reaches the log file (seen on a loaded machine).
    deadline = time.monotonic() + 5
    while True:
        lines = [r for r in service.records("request") if r.get("path") == path]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.slow
def test_a_trusted_proxys_forwarded_headers_are_honoured(serve: Any) -> None:
    service = serve("127.0.0.1")
    _get(service, "/api/health", FORWARDED)
    (line,) = _request_log(service, "/api/health")
    assert (line["client"], line["scheme"]) == ("203.0.113.7", "https")


@pytest.mark.slow
def test_an_untrusted_peers_forwarded_headers_are_ignored(serve: Any) -> None:
    service = serve("10.0.0.5")  # the ALB's address; this test's loopback is not it
    _get(service, "/api/health", FORWARDED)
    (line,) = _request_log(service, "/api/health")
    assert (line["client"], line["scheme"]) == ("127.0.0.1", "http")


@pytest.mark.slow
def test_a_chain_of_trusted_proxies_yields_the_first_untrusted_address(serve: Any) -> None:
    # client -> API Gateway (10.0.0.5, trusted) -> this loopback peer (trusted)
    service = serve("127.0.0.1,10.0.0.0/8")
    chain = {"X-Forwarded-For": "198.51.100.9, 10.0.0.5", "X-Forwarded-Proto": "https"}
    _get(service, "/api/health", chain)
    (line,) = _request_log(service, "/api/health")
    assert line["client"] == "198.51.100.9"
