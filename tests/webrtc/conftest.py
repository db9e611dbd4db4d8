"""WebRTC tests: they run only inside a loopback-only network namespace.

``tests/interview/test_webrtc_netns.py`` creates the namespace (``unshare -n``, then
``ip link set lo up``) and runs this directory's tests in it with ``PIPELINE_NETNS=1``,
so coturn, the service and every peer share 127.0.0.1 and no packet leaves it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.coturn import Coturn

if os.environ.get("PIPELINE_NETNS") != "1":
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> None:
    interfaces = [name for _, name in socket.if_nameindex()]
    assert interfaces == ["lo"], f"not a loopback-only namespace: {interfaces}"


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    server = Coturn(tmp_path / "coturn")
    server.start()
    try:
        yield server
    finally:
        server.stop()
