"""Runs tests/webrtc inside a loopback-only network namespace of its own.

Every WebRTC check (coturn, the service, aiortc and Chromium peers) happens in a namespace
whose only interface is ``lo``: aiortc offers no loopback host candidates, so calls there
relay through coturn, as they do from an ECS task. Needs root (or unprivileged user
namespaces) for ``unshare -n``; CI runs as root.
"""

from __future__ import annotations

import pytest

from tests.support.netns import run_in_loopback_namespace


@pytest.mark.slow
@pytest.mark.timeout(660)
def test_webrtc_suite_in_a_loopback_only_namespace() -> None:
    run_in_loopback_namespace("tests/webrtc")
