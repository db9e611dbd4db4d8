"""Runs tests/interview_lb (two processes behind HAProxy) in a loopback-only namespace.

As tests/interview/test_webrtc_netns.py does for tests/webrtc: coturn, a private
redis-server, HAProxy, both service processes and every caller share the namespace's
127.0.0.1, and no packet leaves it. Needs root (or unprivileged user namespaces).
"""

from __future__ import annotations

import pytest

from tests.support.netns import run_in_loopback_namespace


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_interviews_behind_a_load_balancer_in_a_loopback_only_namespace() -> None:
    run_in_loopback_namespace("tests/interview_lb", timeout_s=400)
