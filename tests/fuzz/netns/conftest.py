"""Fuzz tests that make real WebRTC offers: only inside the loopback-only namespace.

``tests/fuzz/test_signaling_netns.py`` runs this directory there (see
tests/support/netns.py), as tests/interview/test_webrtc_netns.py does for tests/webrtc.
"""

from __future__ import annotations

import os
import socket

import pytest

if os.environ.get("PIPELINE_NETNS") != "1":
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> None:
    interfaces = [name for _, name in socket.if_nameindex()]
    assert interfaces == ["lo"], f"not a loopback-only namespace: {interfaces}"
