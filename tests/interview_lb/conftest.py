"""Interviews behind a load balancer: run only inside a loopback-only network namespace.

``tests/interview/test_load_balancer_netns.py`` creates the namespace and runs this
directory in it with ``PIPELINE_NETNS=1`` (a run of its own, apart from tests/webrtc, so
each keeps its time budget).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from tests.support.coturn import Coturn

if os.environ.get("PIPELINE_NETNS") != "1":
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> None:
    interfaces = [name for _, name in socket.if_nameindex()]
    assert interfaces == ["lo"], f"not a loopback-only namespace: {interfaces}"


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    # A SIGKILLed service leaves its allocations on coturn until they expire (10 min): with
    # the default 20 relay ports, a browser call after it could find none left.
    server = Coturn(tmp_path_factory.mktemp("coturn"), relay_ports=200)
    server.start()
    try:
        yield server
    finally:
        server.stop()
