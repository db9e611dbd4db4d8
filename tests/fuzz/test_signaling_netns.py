"""Runs the signaling fuzzers (tests/fuzz/netns) inside a loopback-only namespace."""

from __future__ import annotations

import pytest

from tests.support.netns import run_in_loopback_namespace


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_signaling_fuzzers_in_a_loopback_only_namespace() -> None:
    run_in_loopback_namespace("tests/fuzz/netns", timeout_s=240)
