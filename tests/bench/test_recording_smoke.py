"""The recording benchmark runs end to end on a short call (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.uvicorn_process import ROOT


@pytest.mark.slow
def test_the_recording_benchmark_prints_its_figures() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.recording", "--minutes", "0.5", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["long"]["dropped_frames"] == 0
    assert abs(report["long"]["recorded_s"] - 30.0) < 0.1
    assert "per minute of call" in result.stdout
