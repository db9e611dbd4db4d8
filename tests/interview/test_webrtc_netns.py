"""Runs tests/webrtc inside a loopback-only network namespace of its own.

Every WebRTC check (coturn, the service, aiortc and Chromium peers) happens in a namespace
whose only interface is ``lo``: aiortc offers no loopback host candidates, so calls there
relay through coturn, as they do from an ECS task. Needs root (or unprivileged user
namespaces) for ``unshare -n``; CI runs as root.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support.uvicorn_process import ROOT


@pytest.mark.slow
def test_webrtc_suite_in_a_loopback_only_namespace() -> None:
    inner = (
        "ip link set lo up && exec env PIPELINE_NETNS=1 "
        f"{sys.executable} -m pytest tests/webrtc -p no:cacheprovider -p no:randomly "
        "-q -rA --tb=short --show-capture=no"
    )
    command = ["unshare", "-n", "--", "sh", "-c", inner]
    if os.geteuid() != 0:
        command = ["unshare", "-r", "-n", "--", "sh", "-c", inner]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    output = result.stdout + result.stderr
    print(output)  # the inner report, shown with -s or on failure
    assert result.returncode == 0, output[-6000:]
    summary = output.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), summary
    assert "skipped" not in summary, summary  # a skipped WebRTC check is not a pass
