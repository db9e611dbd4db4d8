"""Run a directory of tests inside a loopback-only network namespace of its own.

Every WebRTC check (coturn, the service, aiortc and Chromium peers) happens in a
namespace whose only interface is ``lo`` (``unshare -n``, then ``ip link set lo up``),
with ``PIPELINE_NETNS=1`` so the directory's conftest collects its tests. Needs root
(or unprivileged user namespaces); CI runs as root.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.support.uvicorn_process import ROOT


def run_in_loopback_namespace(directory: str, timeout_s: float = 600) -> str:
    """Run ``pytest directory`` in the namespace; fail unless every test there passed."""
    inner = (
        "ip link set lo up && exec env PIPELINE_NETNS=1 "
        f"{sys.executable} -m pytest {directory} -p no:cacheprovider -p no:randomly "
        "-q -rA --tb=short --show-capture=no"
    )
    command = ["unshare", "-n", "--", "sh", "-c", inner]
    if os.geteuid() != 0:
        command = ["unshare", "-r", "-n", "--", "sh", "-c", inner]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    output = result.stdout + result.stderr
    print(output)  # the inner report, shown with -s or on failure
    assert result.returncode == 0, output[-6000:]
    summary = output.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), summary
    assert "skipped" not in summary, summary  # a skipped WebRTC check is not a pass
    return output
